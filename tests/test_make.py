"""The Makefile's `serve` target: it builds llama.cpp for this processor first, and a missing compiler or a failed
build never stops it from serving (on transformers)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_serve_builds_llamacpp_for_this_cpu_before_serving(tmp_path):
    out = make("-n", "serve", f"VENV={tmp_path / 'venv'}")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "building llama.cpp for this CPU, about 5 minutes once" in text
    build = text.index("chatbot.llamacpp.build")
    assert "[llamacpp]" in text[build:]
    assert text.rindex("chatbot serve") > build  # built first, then served


def test_serve_without_a_compiler_skips_the_build_and_still_serves(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()  # a PATH with no cc or c++
    out = make("-n", "serve", f"VENV={tmp_path / 'venv'}", path=str(empty))
    assert out.returncode == 0, out.stderr
    assert "no C/C++ compiler (cc, c++), so llama.cpp is not built; serving on transformers" in out.stdout
    assert "chatbot.llamacpp.build" not in out.stdout
    assert out.stdout.rstrip().endswith("chatbot serve")


def test_a_failed_llamacpp_build_does_not_fail_make_serve(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("#!/bin/sh\necho 'pretend build error' >&2\nexit 1\n")
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    installed = venv / ".installed"
    installed.touch()
    later = time.time() + 3600  # newer than pyproject.toml: setup counts as done
    os.utime(installed, (later, later))
    out = make("llamacpp-if-possible", f"VENV={venv}")  # really runs: the build fails
    assert out.returncode == 0, out.stdout + out.stderr
    assert "pretend build error" in out.stderr
    assert "the llama.cpp build failed (output above); serving on transformers" in out.stdout
    assert not (venv / ".llamacpp").exists()
