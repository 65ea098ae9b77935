"""A progress bar over a trace's ops on a terminal (ops done, rate, ETA); nothing at all in a pipe or a file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def op_progress(label: str, ops: int) -> Iterator[Callable[[], None] | None]:
    """Yield a callable that advances the bar by one op, or ``None`` when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), "ops", TimeElapsedColumn(), "ETA",
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=ops)
        yield lambda: bar.advance(task)
