"""Progress reporting shared by the CLI and the ComfyUI nodes.

Core loops take `progress: Progress | None` and call `progress(done, total)`.
The nodes pass a wrapper around `comfy.utils.ProgressBar` (which also raises
when the user presses Cancel); the CLI passes a text bar (`text_progress`) or nothing.
"""

import contextlib
import sys
import time
from typing import Callable, Iterable, Iterator, Optional, TypeVar

Progress = Callable[[int, int], None]
T = TypeVar("T")


def track(items: Iterable[T], total: int, progress: Optional[Progress]) -> Iterator[T]:
    """Yield `items`, reporting (i + 1, total) after each one."""
    for i, item in enumerate(items):
        yield item
        if progress is not None:
            progress(i + 1, total)


def report(progress: Optional[Progress], done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def text_progress(label: str) -> Callable[[int, int], None]:
    """A one-line progress bar on stderr."""

    def update(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        end = "\n" if done >= total else ""
        print(f"\r{label:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=sys.stderr,
              flush=True)

    return update


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """timings[name] = wall-clock seconds spent in the with-block (not set when it raises): the one
    way every stage records its timings."""
    mark = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - mark
