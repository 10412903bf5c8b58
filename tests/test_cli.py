"""Every subcommand answers --help without loading heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli.main import build_parser


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


SUBCOMMANDS = sorted(set(_subcommand_paths(build_parser())))


@pytest.mark.parametrize("path", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*path, "--help"])
    assert exc.value.code == 0
    assert "usage: chatbot" in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from cli.main import build_parser; build_parser();"
        "heavy = [m for m in ('torch', 'faiss', 'gradio', 'transformers', 'sentence_transformers')"
        " if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_python_dash_m_cli_works():
    out = subprocess.run([sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True)
    assert "usage: chatbot" in out.stdout
