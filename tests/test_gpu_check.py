"""`scripts/gpu-check.sh`: valid shell, a dry run that prints commands our CLI accepts (and runs nothing), and clear
errors without an output folder or a GPU. CI has no GPU: the real run is for a GPU machine."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu-check.sh"
BASH = shutil.which("bash") or "bash"


def gpu_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})  # fmt: skip


def test_the_script_is_valid_bash():
    out = subprocess.run([BASH, "-n", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)"
)
def test_shellcheck_finds_nothing():
    out = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_dry_run_prints_the_benchmarks_and_the_training_run_and_runs_nothing(tmp_path):
    from cli.main import build_parser

    out_dir, venv = tmp_path / "figures", tmp_path / "venv"
    out = gpu_check(str(out_dir), "--dry-run", env={"VENV": str(venv)})
    assert out.returncode == 0, out.stderr
    assert not out_dir.exists() and not venv.exists()
    lines = out.stdout.splitlines()
    chatbot = [shlex.split(line) for line in lines if line.startswith(f"{venv}/bin/chatbot ")]
    assert [argv[1] for argv in chatbot] == ["bench", "bench", "train"]
    parser = build_parser()
    parsed = [parser.parse_args(argv[1:]) for argv in chatbot]  # every flag is one our CLI accepts
    assert [(p.n, p.device) for p in parsed[:2]] == [(1, "cuda"), (32, "cuda")]
    assert [Path(p.out) for p in parsed[:2]] == [out_dir / "generate-1.json", out_dir / "generate-32.json"]
    assert parsed[2].cfg_max_steps == 200 and parsed[2].cfg_device == "cuda"
    assert (REPO / "training" / "samples" / "train.jsonl").exists() and (REPO / "training" / "train.toml").exists()
    assert any("pip install" in line and str(REPO) in line for line in lines)  # it sets up the project too


@pytest.mark.parametrize(
    ("args", "message"), [((), "usage"), (("a", "b"), "usage"), (("a", "--fast"), "unknown option")]
)
def test_bad_arguments_say_how_to_call_it(args, message):
    out = gpu_check(*args)
    assert out.returncode == 2 and message in out.stderr


def test_without_a_gpu_it_stops_at_once_and_says_why(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))  # a PATH without nvidia-smi
    out = gpu_check(str(tmp_path / "figures"), env={"PATH": str(bin_dir), "VENV": str(tmp_path / "venv")})
    assert out.returncode == 1
    assert "no nvidia-smi: run this on a machine with an NVIDIA GPU" in out.stderr
    assert not (tmp_path / "venv").exists()
