"""What every benchmark prints about the machine it ran on (shared by benchmarks/*.py)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_report"]


def cpu_report() -> str:
    """CPU model, logical cores, AVX-512 flags (Linux) and BLAS thread pools."""
    from threadpoolctl import threadpool_info  # noqa: PLC0415

    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    avx = " ".join(sorted(f for f in flags if f.startswith("avx512"))) or "none"
    pools = "; ".join(
        f"{d.get('internal_api')} threads={d.get('num_threads')}" for d in threadpool_info()
    )
    return (
        f"cpu: {model}; logical cores: {os.cpu_count()}; avx512 flags: {avx}; threadpools: {pools}"
    )
