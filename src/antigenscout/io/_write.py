"""Atomic output writing: a reader never sees a half-written file, and a failed run
never replaces a user's earlier result."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from .._errors import InputError

__all__ = ["atomic_open", "prepare_out_dir", "write_json", "write_table", "write_text"]


def prepare_out_dir(out: str | os.PathLike[str]) -> Path:
    """Create the output directory if needed and check that it is writable.

    Parameters
    ----------
    out
        Directory that will receive the outputs.

    Returns
    -------
    The directory as a :class:`~pathlib.Path`.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        msg = f"--out {str(path)!r} exists and is not a directory; choose a directory path."
        raise InputError(msg)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        msg = f"cannot create output directory {str(path)!r}: {e.strerror}; choose a writable path."
        raise InputError(msg) from None
    if not os.access(path, os.W_OK):
        msg = f"output directory {str(path)!r} is not writable; choose a writable path."
        raise InputError(msg)
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN written as null)."""
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return write_text(path, text + "\n")


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    """Write a DataFrame as TSV (or Parquet if ``path`` ends in ``.parquet``) atomically."""
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_open(path, "wb") as fh:
            df.to_parquet(fh, index=index)
    else:
        with atomic_open(path) as fh:
            df.to_csv(fh, sep="\t", index=index, float_format="%.6g", lineterminator="\n")
    return path


def _jsonable(obj: Any) -> Any:
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj
