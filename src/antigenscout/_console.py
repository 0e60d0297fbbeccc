"""The terminal of the command-line tools: consoles and the progress bar.

Every long command shows the progress bar; rich is imported on first use, so ``--help`` stays
fast.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ._types import ProgressCallback


def err_console() -> Console:
    """Return the standard-error console: progress, notes, warnings and errors."""
    from rich.console import Console  # noqa: PLC0415

    return Console(stderr=True, highlight=False)


def out_console() -> Console:
    """Return the standard-output console: the results a command prints."""
    from rich.console import Console  # noqa: PLC0415

    return Console(highlight=False)


@contextlib.contextmanager
def steps(console: Console, unit: str = "cells") -> Iterator[ProgressCallback]:
    """Show a transient bar naming the step now running; silent in a pipe or a CI log.

    The bar shows ``done/total <unit>`` where the step is counted, and the step's elapsed time.

    Yields the :data:`~antigenscout._types.ProgressCallback` the tools call
    (``progress(step, done, total)``); a new step starts a new bar and clock.
    """
    from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    class CountColumn(ProgressColumn):
        """``done/total <unit>``; nothing for a step that is not counted."""

        def render(self, task: Any) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{int(task.completed):,}/{int(task.total):,} {unit}")

    bar = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        CountColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    state: dict[str, Any] = {"step": None, "task": None}

    def progress(step: str, done: int, total: int | None) -> None:
        if step != state["step"]:
            if state["task"] is not None:
                bar.remove_task(state["task"])
            state["step"] = step
            state["task"] = bar.add_task(step, total=total, completed=done)
        else:
            bar.update(state["task"], completed=done, total=total)

    with bar:
        yield progress
