"""Facts about the host a time was measured on.

Training speed on CPU differs up to 4x between hosts with and without AVX-512, so every time
the project records (benchmarks, the search table, speed settings per host kind) names the
CPU model and whether it has AVX-512.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> tuple[str, bool]:
    """(CPU model name, whether it has AVX-512)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), False
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model or platform.machine(), "avx512f" in flags


def cpu_label() -> str:
    """``"MODEL (AVX-512)"`` or ``"MODEL (no AVX-512)"``: the CPU as a table cell."""
    model, avx512 = cpu_model()
    return f"{model} ({'AVX-512' if avx512 else 'no AVX-512'})"


def cores_available() -> int:
    """How many cores this process may run on (its affinity, e.g. under ``taskset``): a
    pinned part of a figure trains at another speed than one on every core."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
