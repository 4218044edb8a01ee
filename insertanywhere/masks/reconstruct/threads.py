"""A small thread pool for per-frame work: OpenCV and large numpy operations release the GIL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")

WORKERS = 2


def map_threads(fn: Callable[[T], R], items: Iterable[T], workers: int = WORKERS) -> list[R]:
    """[fn(item) for item in items], computed on `workers` threads, in order."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def stack_frames(frame_fn: Callable[[int], np.ndarray], count: int, dtype, out: np.ndarray | None = None
                 ) -> np.ndarray:
    """np.stack([frame_fn(t) for t in range(count)]).astype(dtype), filled in place on the threads
    (no stacked copy, no second copy for the type). out: an array [count, ...] to fill instead of a
    new one; it may be the array frame_fn reads when frame t reads only its own frame."""
    first = np.asarray(frame_fn(0))
    if out is None:
        out = np.empty((count,) + first.shape, dtype)
    out[0] = first

    def fill(t: int) -> None:
        out[t] = frame_fn(t)

    map_threads(fill, range(1, count))
    return out
