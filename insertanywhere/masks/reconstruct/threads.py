"""A small thread pool for per-frame work: OpenCV and large numpy operations release the GIL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

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
