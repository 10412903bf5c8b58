"""The web app's commands: `chatbot users add|list`, `chatbot serve --help`, and `chatbot bench serve` against a
live server."""

from __future__ import annotations

import io
import json

import pytest

from cli.main import main
from ui import serve_bench


def test_users_add_and_list(monkeypatch, capsys, chatbot_home):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["users", "add", "ann", "--role", "agent", "--password-stdin"]) == 0
    assert "added agent ann" in capsys.readouterr().out
    answers = iter(["another-password", "another-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "ada", "--role", "admin"]) == 0
    assert main(["users", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in listing[-2:]] == [["ada", "admin"], ["ann", "agent"]]

    from chatbot.store import Store

    store = Store(path=chatbot_home / "chatbot.sqlite3").warm_up()
    assert store.authenticate("ann", "a-long-password").role == "agent"
    assert store.authenticate("ann", "wrong") is None
    store.close()


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["users", "add", "bob", "--role", "agent", "--password-stdin"], "short\n", "at least 8 characters"),
        (["users", "add", "ann", "--role", "agent", "--password-stdin"], "a-long-password\n", "already exists"),
    ],
)
def test_users_add_refuses_bad_input(monkeypatch, capsys, argv, stdin, message):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    main(["users", "add", "ann", "--role", "agent", "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_users_add_refuses_mismatched_passwords(monkeypatch, capsys):
    answers = iter(["first-password", "second-password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "ann", "--role", "agent"]) == 1
    assert "differ" in capsys.readouterr().err


def test_role_is_checked_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["users", "add", "ann", "--role", "boss"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["serve", "--help"], ["users", "--help"], ["bench", "serve", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_percentile():
    assert serve_bench.percentile([], 50) is None
    assert serve_bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert serve_bench.percentile([0.0, 10.0], 95) == pytest.approx(9.5)


def test_bench_serve_against_a_live_server(live_reset, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(serve_bench, "token_counter", lambda config: (None, "pieces"))
    out = tmp_path / "serve.json"
    code = main(["bench", "serve", "--url", live_reset.url, "--clients", "3", "--messages", "2", "--json",
                 "--out", str(out)])  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result == json.loads(out.read_text())
    assert set(serve_bench.JSON_KEYS) <= set(result)
    assert result["n_clients"] == 3 and result["n_requests"] == 6 and result["errors"] == 0
    assert 0 < result["ttft_s_p50"] <= result["ttft_s_p95"] < 10
    assert result["decode_tok_s_p50"] > 0
    assert sum(result["routes"].values()) == 6
    assert "TTFT p50 / p95" in serve_bench.table(result)


def test_bench_serve_counts_errors(capsys):
    result = serve_bench.run("http://127.0.0.1:9", clients=2, messages=1, timeout=2)
    assert result["errors"] == 2 and result["ttft_s_p50"] is None
    assert "ConnectError" in result["error_examples"][0]
