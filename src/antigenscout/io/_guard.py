"""Defences shared by the readers: memory budget, HDF5 crash probe, error conversion.

Corrupt or hostile input files must end in :class:`~antigenscout.InputError`, never in a
crash of the process, a runaway allocation or a stray low-level exception:

* :func:`memory_budget` and :func:`check_fits` refuse declared sizes that cannot fit in
  the machine's memory *before* anything is allocated;
* :func:`probe_hdf5` walks an HDF5 file in a short child process, so a segfault inside
  libhdf5 on a damaged file kills the child, not the caller;
* :func:`reader_errors` turns any other exception raised while parsing a file into an
  :class:`~antigenscout.InputError` naming the file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from .._errors import InputError

__all__ = ["check_fits", "memory_budget", "probe_hdf5", "reader_errors"]

P = ParamSpec("P")
R = TypeVar("R")

#: Datasets of at most this many bytes are read in full by the probe.
PROBE_FULL_BYTES = 4 << 20
#: Files of at most this many bytes have every dataset read in full by the probe.
PROBE_SMALL_FILE = 64 << 20
#: ... but a dataset of a small file declaring more than this many bytes (a hostile
#: shape) is only sampled.
PROBE_SMALL_FILE_CAP = 256 << 20
#: Seconds the probe may take before the file is declared unreadable: a base (starting
#: Python and h5py takes well under a second) plus time to read what it reads in full at a
#: slow 5 MB/s, at most two minutes. Damaged variable-length string heaps can make libhdf5
#: loop forever on a 31 KB file; the budget keeps that to seconds for small files.
PROBE_BASE_TIMEOUT_S = 10.0
PROBE_MAX_TIMEOUT_S = 120.0
PROBE_SLOW_BYTES_PER_S = 5 << 20


def probe_timeout(size: int, read_all: bool) -> float:
    """Seconds allowed to probe a file of ``size`` bytes (see :data:`PROBE_BASE_TIMEOUT_S`)."""
    extra = size / PROBE_SLOW_BYTES_PER_S if read_all else 30.0
    return min(PROBE_MAX_TIMEOUT_S, PROBE_BASE_TIMEOUT_S + extra)


def memory_budget() -> int:
    """Bytes of memory the process may use: physical RAM, or the cgroup limit if lower.

    Returns
    -------
    The smaller of ``SC_PAGE_SIZE × SC_PHYS_PAGES`` and a cgroup v2/v1 memory limit when
    one is set; ``2**62`` if neither can be determined.
    """
    sizes: list[int] = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for f in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(f).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) > 0:
            sizes.append(int(text))
    return min(sizes) if sizes else 2**62


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1024 or unit == "PB":  # noqa: PLR2004
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"  # pragma: no cover


def check_fits(nbytes: float, *, what: str, source: str) -> None:
    """Raise :class:`InputError` if ``nbytes`` would not fit in :func:`memory_budget`.

    Parameters
    ----------
    nbytes
        Estimated bytes needed (may be a float: declared sizes can exceed ``int64``).
    what
        Description of the declared size, e.g. ``"a 10 × 20 dense matrix"``.
    source
        Quoted file name, used in the message.
    """
    budget = memory_budget()
    if nbytes > budget:
        msg = (
            f"{source} declares {what}, which needs about {_human(nbytes)} but this machine "
            f"has {_human(budget)} of memory; the file is corrupt or too large to read here"
        )
        raise InputError(msg)


#: A compressed input may expand this many times its size on disk, or to
#: :data:`EXPANSION_FLOOR` bytes, whichever is more; beyond that it is taken as corrupt (or a
#: decompression bomb) and refused before memory is spent on it. Count matrices compress a
#: few to a few tens of times.
MAX_EXPANSION = 200
EXPANSION_FLOOR = 1 << 30


def check_expansion(expanded: float, on_disk: int, *, what: str, source: str) -> None:
    """Raise :class:`InputError` if ``expanded`` bytes from ``on_disk`` bytes are too many.

    Too many is more than both :data:`MAX_EXPANSION` × the size on disk and
    :data:`EXPANSION_FLOOR`.

    >>> check_expansion(5e6, 1_000_000, what="text", source="'x.tsv.gz'")  # 5x: fine
    """
    limit = max(MAX_EXPANSION * on_disk, EXPANSION_FLOOR)
    if expanded > limit:
        msg = (
            f"{source} expands to at least"
            f" {_human(expanded)} of {what} from {_human(on_disk)} on disk, a ratio no "
            "expression matrix reaches; the file is corrupt (or built to exhaust memory): "
            "re-export it, or decompress it yourself if it is genuine"
        )
        raise InputError(msg)


def reader_errors(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a reader so that every exception it raises becomes :class:`InputError`.

    The first positional argument of the reader is the path named in the message.
    ``InputError`` passes through unchanged; ``MemoryError``, ``EOFError``,
    ``zlib.error``, ``UnicodeDecodeError``, ``OSError`` and the like become one-line
    ``InputError`` messages naming the file and asking for a complete copy.

    Parameters
    ----------
    what
        The format, as in ``"a 10x HDF5 matrix"``.
    """

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except (InputError, Warning):
                raise  # already explicit; warnings raised as errors stay warnings
            except MemoryError as e:
                source = repr(os.fspath(args[0])) if args else "the input"  # type: ignore[arg-type]
                msg = (
                    f"{source} is too large to read into this machine's memory "
                    f"({_human(memory_budget())}); use a machine with more memory or a "
                    "smaller subset of cells"
                )
                raise InputError(msg) from e
            except Exception as e:
                source = repr(os.fspath(args[0])) if args else "the input"  # type: ignore[arg-type]
                raise InputError(describe_failure(source, what, e)) from e

        return inner

    return wrap


def describe_failure(source: str, what: str, error: BaseException) -> str:
    """One-line message for a file that could not be parsed."""
    text = str(error).strip().splitlines()
    detail = f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
    return (
        f"cannot read {source} as {what} ({detail}); the file is truncated or corrupt: "
        "check that it is complete (re-download or re-export it)"
    )


# --------------------------------------------------------------------------- HDF5 probe

_PROBE = r"""
import json, resource, sys
limit = int(sys.argv[4])
try:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ValueError, OSError):
    pass
import h5py

full_bytes, read_all = int(sys.argv[2]), sys.argv[3] == "1"
cap_bytes = int(sys.argv[5])
out = {"nbytes": 0, "objects": 0, "datasets": {}}

def attrs(obj):
    for k in obj.attrs.keys():
        obj.attrs[k]

def visit(name, obj):
    out["objects"] += 1
    attrs(obj)
    if not isinstance(obj, h5py.Dataset):
        return
    n = obj.size or 0
    dt = obj.dtype
    nbytes = n * dt.itemsize
    out["nbytes"] += nbytes
    out["datasets"][name] = [list(obj.shape) if obj.shape is not None else None, dt.str, nbytes]
    if n == 0:
        return
    if nbytes <= full_bytes or (read_all and nbytes <= cap_bytes):
        obj[()]
    else:  # a corner of at most 64 entries per axis: touches the first chunk only
        obj[tuple(slice(0, 64) for _ in obj.shape)]

with h5py.File(sys.argv[1], "r") as f:
    attrs(f)
    f.visititems(visit)
print(json.dumps(out))
"""


def probe_hdf5(path: Path, *, source: str, what: str) -> dict[str, Any]:
    """Walk an HDF5 file in a child process; raise :class:`InputError` if it is corrupt.

    The child opens the file with h5py, reads every attribute and the metadata of every
    object, reads each dataset in full when it is small (≤ 4 MB) or the file is (≤ 64 MB,
    datasets declaring ≤ 256 MB), else a corner of at most 64 entries per axis. A child
    killed by a signal (libhdf5 segfaults on some damaged files), one that fails, or one
    that runs past :func:`probe_timeout` means the file is unreadable. Its address space is capped
    at the machine's memory.

    Parameters
    ----------
    path
        The HDF5 file.
    source
        Quoted file name for messages.
    what
        The format, as in ``"an h5ad file"``.

    Returns
    -------
    ``{'nbytes': total declared dataset bytes, 'objects': n,
    'datasets': {name: [shape, dtype, nbytes]}}``.
    """
    size = path.stat().st_size
    read_all = size <= PROBE_SMALL_FILE
    timeout = probe_timeout(size, read_all)
    limit = max(memory_budget(), 2 << 30)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    args = [
        str(path),
        str(PROBE_FULL_BYTES),
        "1" if read_all else "0",
        str(limit),
        str(PROBE_SMALL_FILE_CAP),
    ]
    try:
        proc = subprocess.run(
            [sys.executable, "-P", "-c", _PROBE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        msg = (
            f"reading the HDF5 structure of {source} did not finish in {timeout:.0f} s; "
            f"the file is corrupt (not {what}): re-download or re-export it"
        )
        raise InputError(msg) from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        msg = (
            f"{source} is corrupt: reading its HDF5 structure crashed ({name}); "
            f"re-download or re-export {what}"
        )
        raise InputError(msg)
    if proc.returncode != 0:
        lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
        detail = lines[-1][:200] if lines else f"exit status {proc.returncode}"
        msg = (
            f"cannot read {source} as {what} ({detail}); the file is truncated, corrupt or "
            "not HDF5: check that it is complete (re-download or re-export it)"
        )
        raise InputError(msg)
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        msg = f"cannot read {source} as {what}: its HDF5 probe gave no result; re-export it"
        raise InputError(msg) from None
    return result
