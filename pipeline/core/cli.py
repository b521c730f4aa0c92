"""What every stage's ``main`` shares at the edge: logging, progress bars, and clean exits.

``run_stage(main, expected)`` turns the errors a user can cause (bad params, bad input) into one
logged line and exit status 1, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")


def progress(items: Iterable[T], total: int, desc: str, unit: str = "video") -> Iterator[T]:
    """A progress bar with rate and ETA on stderr (tqdm hides it when stderr is not a terminal)."""
    from tqdm import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit=unit, mininterval=1.0, disable=None))


def run_stage(main: Callable[[], None], expected: tuple[type[BaseException], ...]) -> int:
    """Run a stage's main; expected errors (bad params, bad input) print one clear line, exit 1."""
    configure_logging()
    try:
        main()
    except expected as err:
        logging.getLogger("stage").error("%s", err)
        return 1
    return 0
