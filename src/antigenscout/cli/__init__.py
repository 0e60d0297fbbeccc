"""Command-line interface: ``antigenscout demo | rank | gates | profile | ...``.

``main(argv)`` does the work and returns an exit code; ``console_main`` calls
``sys.exit``. Every failure a user can cause (bad input or options, a missing or
unwritable path, a full disk) ends in one ``error:`` line on stderr and exit code 2;
a fault in antigenscout's own code shows its traceback and asks to be reported (exit 1).

Heavy modules (numpy, pandas, anndata, numba) are imported inside the commands, and the
commands of other subpackages are loaded on first use, so ``--help`` answers at once.
"""

from __future__ import annotations

import errno
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import click

from .._console import err_console
from .._errors import AntigenscoutError
from ._atlas import atlas
from ._gates import gates
from ._profile import profile
from ._rank import demo, rank

__all__ = ["cli", "console_main", "main"]

#: Issue tracker text shown with a traceback of an internal fault.
REPORT_BUG = (
    "this is a bug in antigenscout, not in your input: please report it with the command "
    "you ran and the traceback above"
)


class LazyGroup(click.Group):
    """A group whose commands from other subpackages are imported on first use.

    ``lazy`` maps a command name to ``("module:attribute", "short help")``; the short help
    is kept here so that ``--help`` lists the commands without importing them.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target, _ = self.lazy[cmd_name]
            module, attr = target.split(":")
            return getattr(importlib.import_module(module, __package__), attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy={
        "simulate": (
            "..kinetics._cli:simulate_command",
            "Simulate CAR-T kinetics, tumour response and healthy-cell depletion in a cohort.",
        ),
        "report": (
            "..report._cli:report_command",
            "Write a self-contained HTML report of RUN_DIR.",
        ),
        "benchmark": (
            "..benchmark._cli:benchmark_command",
            "Score the engine and the baselines against the clinical record.",
        ),
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="antigenscout")
def cli() -> None:
    """antigenscout: choose immunotherapy targets that cover the tumour and spare the body."""


for _command in (demo, rank, gates, profile, atlas):
    cli.add_command(_command)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    err_console().print(f"warning: {message}", soft_wrap=True, markup=False)


#: A hint per errno for failures of the file system.
_OS_HINTS: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space or choose another --out",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose another --out",
    errno.EACCES: "permission denied: check the path's permissions or choose another path",
    errno.EPERM: "operation not permitted: check the path's permissions",
    errno.EROFS: "the file system is read-only: choose another --out",
    errno.ENOENT: "no such file or directory: check the path",
    errno.ENOTDIR: "a part of the path is not a directory: check the path",
    errno.EISDIR: "the path is a directory: give a file",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter path",
    errno.EFBIG: "a file grew past the size the file system or a limit allows: free space, "
    "raise the limit or choose another --out",
}


def _os_message(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    hint = _OS_HINTS.get(e.errno or -1, f"{e.strerror or e}: check the paths and the disk")
    return f"{hint}{where}"


def _invoked(argv: Sequence[str]) -> click.Command | None:
    """Return the command ``argv`` runs (``atlas build`` walks into the group), if any."""
    ctx = click.Context(cli)
    cmd: click.Command = cli
    for word in argv:
        if not isinstance(cmd, click.Group):
            break
        sub = cmd.get_command(ctx, word) if word in cmd.list_commands(ctx) else None
        if sub is None:
            return None
        cmd = sub
    return None if isinstance(cmd, click.Group) else cmd


def _as_flags(e: AntigenscoutError, argv: Sequence[str]) -> str:
    """Write an error about an API parameter with the running command's flag for it.

    The engine names the parameter as the Python API spells it (``max_genes must be …``);
    a person at the terminal typed ``--max-genes``. Only the command that ran is asked, as
    two commands may spell one parameter differently; without such an option the message
    stays as the engine wrote it.
    """
    message = str(e)
    if not (e.param and message.startswith(e.param)):
        return message
    try:
        cmd = _invoked(argv)
    except Exception:  # a command that fails to load: the engine's words still say it
        return message
    for p in [] if cmd is None else cmd.params:
        longs = [o for o in p.opts if o.startswith("--")]
        if isinstance(p, click.Option) and p.name == e.param and longs:
            return longs[0] + message[len(e.param) :]
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    0 on success; 2 for any failure the user can fix (the message says how); 130 when
    interrupted; 1, with a traceback, for a fault in antigenscout itself.
    """
    from .. import _provenance

    _provenance.COMMAND_LINE = ["antigenscout", *(sys.argv[1:] if argv is None else argv)]
    try:
        return _main(argv)
    finally:
        _provenance.COMMAND_LINE = None


def _main(argv: Sequence[str] | None) -> int:
    err = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except AntigenscoutError as e:
        err = f"error: {_as_flags(e, sys.argv[1:] if argv is None else argv)}"
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, EOFError):  # click turns EOFError into Abort
            err = "error: unexpected end of input; check that the input file is complete"
        else:
            err_console().print("aborted")
            return 130
    except click.ClickException as e:
        err = f"error: {e.format_message()}"
    except MemoryError:
        err = "error: out of memory; try a smaller input, fewer genes or --candidates"
    except OSError as e:
        err = f"error: {_os_message(e)}"
    except KeyboardInterrupt:
        err_console().print("aborted")
        return 130
    except Exception:
        import traceback

        traceback.print_exc()
        err_console().print(f"internal error: {REPORT_BUG}", soft_wrap=True, markup=False)
        return 1
    if err is not None:
        err_console().print(" ".join(err.split()), soft_wrap=True, markup=False)
        return 2
    return 0


def console_main() -> None:
    """Entry point of the ``antigenscout`` script."""
    sys.exit(main())
