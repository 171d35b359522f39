"""Progress and failures of long-running (generator) operators, in the App
and in the log."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import Any, TypeVar

from ._pipeline import Progress
from ._samples import LabelErrorInputError

logger = logging.getLogger(__name__)

_INTERVAL = 1.0  # seconds between progress reports
T = TypeVar("T")


def report_progress(
    ctx, updates: Generator[Progress, None, T], what: str
) -> Generator[Any, None, T]:
    """Yields the App's progress updates for a run's ``updates``, at most one
    a second (each is also logged as a bar), and returns what ``updates``
    returns. A failure is shown in the App as an error notification naming
    ``what`` failed, then raised as usual: the App shows nothing of an
    error raised by a generator operator."""
    last = 0.0
    try:
        while True:
            try:
                update = next(updates)
            except StopIteration as done:
                return done.value
            now = time.monotonic()
            if now - last < _INTERVAL and update.fraction < 1.0:
                continue
            last = now
            logger.info("%s %s", _bar(update.fraction), update.label)
            if ctx.delegated:
                ctx.set_progress(progress=update.fraction, label=update.label)
            else:
                yield ctx.trigger(
                    "set_progress",
                    dict(progress=update.fraction, label=update.label),
                )
    except Exception as e:
        yield ctx.ops.notify(_failure_message(what, e), variant="error")
        raise


def _failure_message(what: str, error: Exception) -> str:
    if isinstance(error, LabelErrorInputError):
        return f"{what}: {error}"
    return (
        f"{what} failed: {type(error).__name__}: {error} (the traceback "
        "is in the FiftyOne server's log)"
    )


def _bar(fraction: float, width: int = 20) -> str:
    filled = round(fraction * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"
