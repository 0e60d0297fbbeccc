"""Atomic output writing: a reader never sees a half-written file.

A failed run never replaces a user's earlier result.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from .._errors import InputError

__all__ = [
    "OUTPUT_FILES",
    "atomic_open",
    "prepare_out_dir",
    "read_output_table",
    "spreadsheet_safe",
    "staged_run",
    "write_json",
    "write_table",
    "write_text",
]

#: Files a command writes into its ``--out`` directory, by command family.
OUTPUT_FILES: dict[str, frozenset[str]] = {
    "rank": frozenset(
        {"targets.tsv", "risk.tsv", "patient_coverage.tsv", "patient_model.tsv", "ambient.tsv"}
    ),
    "gates": frozenset({"gates.tsv"}),
    "profile": frozenset({"profile.tsv"}),
    "atlas": frozenset(
        {
            "atlas.json",
            "cell_types.parquet",
            "genes.parquet",
            "fraction.parquet",
            "mean.parquet",
            "detected.parquet",
            "samples.npz",
        }
    ),
    "simulate": frozenset({"cohort.tsv", "summary.json", "curves.tsv"}),
    "benchmark": frozenset(
        {"metrics.json", "targets_rows.tsv", "toxicity_rows.tsv", "indications_used.tsv"}
    ),
}
#: Files any run may hold besides its family's own.
_COMMON_FILES = frozenset({"run.json", "report.html"})
_FAMILY = {"demo": "rank"}


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


#: First characters with which a spreadsheet reads a cell as a formula (OWASP, "CSV
#: injection"): a text cell starting with one is written with a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _escape(v: object) -> object:
    # text starting with an apostrophe gets one more, so reading back is lossless
    if isinstance(v, str) and (
        v.startswith("'") or (v.startswith(FORMULA_START) and not _is_number(v))
    ):
        return "'" + v
    return v


def _unescape(v: object) -> object:
    if (
        isinstance(v, str)
        and len(v) > 1
        and v[0] == "'"
        and v[1:].startswith(("'", *FORMULA_START))
    ):
        return v[1:]
    return v


def _textual(dtype: Any) -> bool:
    """Text, mixed objects or categories (AnnData's labels are categorical)."""
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def _map_text(df: pd.DataFrame, f: Any) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if _textual(out[col].dtype):
            out[col] = out[col].astype(object).map(f)
    if _textual(out.index.dtype):
        out.index = pd.Index(out.index.astype(object).map(f), name=out.index.name)
    if _textual(out.columns.dtype):
        out.columns = pd.Index(out.columns.astype(object).map(f), name=out.columns.name)
    return out


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with an apostrophe before every text a spreadsheet would read as a formula.

    Text cells and index and column labels alike: ``=cmd|...``, ``+1+1``, ``@SUM(A1)``, ``-x``;
    a number such as ``-0.5`` stays as it is; text that starts with an apostrophe gets one more,
    so :func:`read_output_table`, which removes one, gives every value back.

    >>> spreadsheet_safe(pd.DataFrame({"label": ["=1+1", "CD19", "-0.5", "@x"]}))["label"].tolist()
    ["'=1+1", 'CD19', '-0.5', "'@x"]
    """
    return _map_text(df, _escape)


def read_output_table(path: str | os.PathLike[str], **kwargs: Any) -> pd.DataFrame:
    """Read a TSV this package wrote (:func:`write_table`), the formula escapes undone."""
    return _map_text(pd.read_csv(path, sep="\t", **kwargs), _unescape)


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], *, index: bool = False) -> Path:
    """Write a DataFrame as TSV (or Parquet if ``path`` ends in ``.parquet``) atomically.

    TSV text cells that a spreadsheet would run as formulas are escaped
    (:func:`spreadsheet_safe`); Parquet keeps the values as they are.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_open(path, "wb") as fh:
            df.to_parquet(fh, index=index)
    else:
        safe = spreadsheet_safe(df)
        with atomic_open(path) as fh:
            safe.to_csv(fh, sep="\t", index=index, float_format="%.6g", lineterminator="\n")
    return path


def _jsonable(obj: Any) -> Any:
    import math  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

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


# --------------------------------------------------------------------------- whole runs


def _family(command: str) -> str:
    return _FAMILY.get(command, command)


def _families_in(path: Path) -> set[str]:
    """Command families whose outputs lie in ``path``."""
    names = {p.name for p in path.iterdir()}
    return {fam for fam, files in OUTPUT_FILES.items() if names & files}


def _is_ours(name: str) -> bool:
    return name in _COMMON_FILES or any(name in files for files in OUTPUT_FILES.values())


@contextlib.contextmanager
def staged_run(out: str | os.PathLike[str], command: str) -> Iterator[Path]:  # noqa: PLR0915
    """Write a whole run into a fresh folder beside ``out`` and swap it in on success.

    ``out`` afterwards holds either the complete new run or, after any failure (an error,
    a full disk, Ctrl-C), the previous content untouched. A previous run of the same
    command is replaced as a whole; files in ``out`` that no antigenscout command writes
    (a user's notes) are kept. A run of another command in ``out`` is never replaced:
    the two would not belong together, so :class:`InputError` asks for another folder.

    Parameters
    ----------
    out
        The ``--out`` directory.
    command
        The command writing the run (``rank``, ``demo``, ``gates``, ``profile``,
        ``simulate``, ``benchmark``).

    Yields
    ------
    The staging directory to write every output into.
    """
    given = str(out)
    out = Path(out)
    if out.is_symlink():  # the folder the link names receives the run (the link stays)
        out = out.resolve()
    out = Path(os.path.abspath(out))
    family = _family(command)
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        msg = (
            f"--out {given!r} is the current folder or one above it, which the run would "
            "replace as a whole: choose a subfolder (e.g. --out results)"
        )
        raise InputError(msg)
    if out.exists() and not out.is_dir():
        msg = f"--out {given!r} exists and is not a directory; choose a directory path."
        raise InputError(msg)
    _recover_abandoned(out)
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            msg = f"output directory {str(out)!r} is not writable; choose a writable path."
            raise InputError(msg)
        other = _families_in(out) - {family}
        if other:
            msg = (
                f"--out {str(out)!r} holds the results of a {sorted(other)[0]!r} run; "
                f"writing {command!r} there would mix two runs: choose another --out folder"
            )
            raise InputError(msg)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".partial"))
        (stage / _OWNER).write_text(str(os.getpid()))
    except OSError as e:
        msg = f"cannot create output directory {str(out)!r}: {e.strerror}; choose a writable path."
        raise InputError(msg) from None
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700; give what mkdir would
        (stage / _OWNER).unlink()
        other = _families_in(out) - {family} if out.is_dir() else set()
        if other:  # another command's run landed in out while this one worked
            aside = _free_name(out.parent / f"{out.name}-{command}")
            os.rename(stage, aside)
            msg = (
                f"--out {given!r} received a {sorted(other)[0]!r} run while this {command!r} "
                f"run was working; this run's outputs were written to {str(aside)!r} instead"
            )
            raise InputError(msg)
        _commit(stage, out)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(e.filename, str):  # name the user's folder, not the staging one
            e.filename = e.filename.replace(str(stage), str(out))
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


#: Marker in a staging folder: the process id of the run writing it.
_OWNER = ".antigenscout-owner"


def _free_name(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3`` … whichever does not exist yet."""
    k, cand = 1, path
    while cand.exists():
        k += 1
        cand = path.with_name(f"{path.name}-{k}")
    return cand


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover_abandoned(out: Path) -> None:
    """Clear the staging folders of ``out`` left by a run that was killed.

    Give back the user's files the swap had moved into them (where ``out`` lacks them) and
    delete the rest. A folder whose run is still alive, or that names no owner, is left alone.
    """
    parent = out.parent
    if not parent.is_dir():
        return
    for stage in parent.glob(f".{out.name}.*.partial"):
        owner = stage / _OWNER
        try:
            pid = int(owner.read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        for p in stage.iterdir():
            if p.name != _OWNER and not _is_ours(p.name) and out.is_dir():
                target = out / p.name
                if not target.exists():
                    with contextlib.suppress(OSError):
                        os.rename(p, target)
        shutil.rmtree(stage, ignore_errors=True)


def _commit(stage: Path, out: Path) -> None:
    """Move ``stage`` to ``out``, carrying over foreign files, removing the old run."""
    try:
        os.rename(stage, out)  # out absent (or an empty folder): one atomic step
        return
    except OSError as e:
        if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    kept = [p for p in out.iterdir() if not _is_ours(p.name) and not (stage / p.name).exists()]
    for p in kept:
        os.rename(p, stage / p.name)
    try:
        if _exchange(stage, out):
            shutil.rmtree(stage, ignore_errors=True)  # stage now holds the old run
            return
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.rename(out, old / "run")
        os.rename(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        for p in kept:  # put the user's files back where they were
            with contextlib.suppress(OSError):
                os.rename(stage / p.name, out / p.name)
        raise


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))
