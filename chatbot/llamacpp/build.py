"""Build flags for llama-cpp-python that match the processor it is built on.

A plain native build of llama.cpp crashes at the first decode on Intel processors with AMX (ggml's AMX
matrix-multiply path), and a build that names an instruction set the processor lacks dies with "Illegal
instruction" (AVX-VNNI on AMD EPYC Zen 4, for instance). So: native detection off, AMX always off, and each
x86 extension switched on only when `/proc/cpuinfo` lists it.

    CMAKE_ARGS="$(python -m chatbot.llamacpp.build)" pip install --no-cache-dir llama-cpp-python==0.3.36

`make llamacpp` runs exactly that.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# ggml CMake option -> the /proc/cpuinfo flag that must be present for it.
X86_OPTIONS: dict[str, str] = {
    "GGML_AVX": "avx",
    "GGML_AVX2": "avx2",
    "GGML_FMA": "fma",
    "GGML_F16C": "f16c",
    "GGML_BMI2": "bmi2",
    "GGML_AVX_VNNI": "avx_vnni",
    "GGML_AVX512": "avx512f",
    "GGML_AVX512_VBMI": "avx512vbmi",
    "GGML_AVX512_VNNI": "avx512_vnni",
    "GGML_AVX512_BF16": "avx512_bf16",
}
# Switched off whatever the processor says: the AMX path crashes at the first decode (MEASURED.md).
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The instruction-set flags of the first processor listed in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_args(flags: set[str], machine: str = "x86_64") -> str:
    """The CMAKE_ARGS for a processor with these flags; non-x86 machines keep ggml's own defaults."""
    if machine not in ("x86_64", "AMD64"):
        return "-DGGML_NATIVE=ON"
    options = ["-DGGML_NATIVE=OFF"]
    options += [f"-D{opt}={'ON' if flag in flags else 'OFF'}" for opt, flag in X86_OPTIONS.items()]
    options += [f"-D{opt}=OFF" for opt in ALWAYS_OFF]
    return " ".join(options)


def main() -> int:
    cpuinfo = Path("/proc/cpuinfo")
    flags = cpu_flags(cpuinfo.read_text()) if cpuinfo.exists() else set()
    if not flags and platform.machine() in ("x86_64", "AMD64"):
        print("chatbot: cannot read /proc/cpuinfo; building for AVX2 only", file=sys.stderr)
        flags = {"avx", "avx2", "fma", "f16c", "bmi2"}
    print(cmake_args(flags, platform.machine()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
