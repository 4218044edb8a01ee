"""Progress reporting shared by the CLI and the ComfyUI nodes.

Core loops take `progress: Progress | None` and call `progress(done, total)`.
The nodes pass a wrapper around `comfy.utils.ProgressBar` (which also raises
when the user presses Cancel); the CLI passes a text bar or nothing.
"""

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
