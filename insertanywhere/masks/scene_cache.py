"""A disk cache of reconstructed scenes, shared by the 4D Reconstruct node and `insertanywhere masks --cache`.

  cache = SceneCache(folder, max_bytes)                  (or SceneCache.from_gb(folder, gb))
  scene, warnings = reconstruct_cached(cache, frames, fps=, depth_input=, K=, fov_deg=, progress=, options=)
  key = scene_key(frames, fps=, depth_input=, K=, fov_deg=, options=)
  scene, warnings = cache.load_or_compute(key, compute)
  cache.get(key) -> SceneRecord | None, cache.put(key, scene)   (both add to cache.warnings)

Entries are `scene_<key>.npz` (SceneRecord.save: written to a temporary file, then renamed, so
a reader never sees a partial entry). A damaged, foreign or old-format entry is removed, the
scene is recomputed, and a warning says so (logged and returned, never raised). The folder is
kept under `max_bytes` by evicting the least recently used entries after each write; a hit
touches its entry. Only this cache's own files (`scene_*.npz`, stale `.scene_*.tmp`) are ever
removed from the folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Union

import numpy as np

from ..errors import InsertAnywhereError
from .scene import SCENE_CONTENT_VERSION, TEMP_SUFFIX, SceneRecord

if TYPE_CHECKING:
    from .reconstruct import ReconstructOptions

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # callers show the returned warnings; no bare stderr lines from here

DEFAULT_MAX_GB = 10.0  # about 55 entries of 81 frames at 832x480
STALE_TEMP_S = 3600.0  # a temporary file this old belongs to a killed save, not to a running one
PREFIX, SUFFIX = "scene_", ".npz"
GB = 10 ** 9
MB = 10 ** 6

def reconstruct_settings(options: Optional["ReconstructOptions"] = None) -> dict:
    """Every field of reconstruct()'s options (None: the defaults), as a plain dict for the key."""
    from .reconstruct import ReconstructOptions

    if options is None:
        options = ReconstructOptions()
    if not isinstance(options, ReconstructOptions):
        raise InsertAnywhereError(f"options must be a ReconstructOptions, got {type(options).__name__}.")
    return dataclasses.asdict(options)


def scene_key(frames: np.ndarray, *, fps: float, depth_input: Optional[Mapping[str, np.ndarray]] = None,
              K=None, fov_deg: Optional[float] = None, options: Optional["ReconstructOptions"] = None) -> str:
    """A hex digest of everything that changes reconstruct()'s result.

    frames (bytes, shape, dtype), fps, the depth input (its key, values, shape, dtype), K, fov_deg
    (as passed to reconstruct: None = default guess), every field of the ReconstructOptions
    (dataclasses.asdict; None = the defaults), SCENE_CONTENT_VERSION and RECONSTRUCT_VERSION
    (bump it when a code change changes results).
    """
    from .reconstruct import RECONSTRUCT_VERSION

    digest = hashlib.blake2b(digest_size=20)

    def part(name: str, data: bytes) -> None:  # length-prefixed, so no two inputs run together
        digest.update(f"{name}:{len(data)}:".encode())
        digest.update(data)

    def array(name: str, value) -> None:
        value = np.ascontiguousarray(value)
        part(name + ".meta", f"{value.dtype.str}{value.shape}".encode())
        part(name, memoryview(value).cast("B") if value.size else b"")

    array("frames", frames)
    for name, values in sorted((depth_input or {}).items()):
        array(f"depth_input.{name}", values)
    if K is not None:
        array("K", np.asarray(K, dtype=np.float64))
    fov = None if fov_deg is None else float(fov_deg)
    header = {"fps": float(fps), "fov_deg": fov,
              "settings": {k: _plain(v) for k, v in sorted(reconstruct_settings(options).items())},
              "scene_format": SCENE_CONTENT_VERSION, "reconstruct_version": RECONSTRUCT_VERSION}
    part("header", json.dumps(header, sort_keys=True, default=repr).encode())
    return digest.hexdigest()


def reconstruct_cached(cache: Optional["SceneCache"], frames: np.ndarray, *, fps: float,
                       depth_input: Optional[Mapping[str, np.ndarray]] = None, K=None,
                       fov_deg: Optional[float] = None, progress=None, options: Optional["ReconstructOptions"] = None
                       ) -> tuple[SceneRecord, list[str]]:
    """reconstruct() through `cache` (None: no cache), keyed by exactly the arguments it is given.

    Returns (scene, this call's cache warnings); the scene's warnings end with them, so they travel
    with the scene (track.json, node messages)."""
    from . import reconstruct as module

    depth_input = dict(depth_input or {})

    def compute() -> SceneRecord:
        return module.reconstruct(frames, K=K, fov_deg=fov_deg, fps=fps, progress=progress, options=options,
                                  **depth_input)

    if cache is None:
        return compute(), []
    key = cache.key(frames, fps=fps, depth_input=depth_input, K=K, fov_deg=fov_deg, options=options)
    scene, warnings = cache.load_or_compute(key, compute)
    if warnings:
        scene = dataclasses.replace(scene, warnings=scene.warnings + warnings)
    return scene, warnings


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    return value


class SceneCache:
    """Reconstructed scenes on disk under `folder`, at most `max_bytes` in all (None: no cap).

    Warnings are logged, collected in `warnings`, returned by load_or_compute, and passed to
    `on_warning` (e.g. the CLI's stderr) as they happen."""

    def __init__(self, folder: Union[str, Path], max_bytes: Optional[int] = int(DEFAULT_MAX_GB * GB),
                 on_warning: Optional[Callable[[str], None]] = None):
        self.folder = Path(folder)
        self.on_warning = on_warning
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise InsertAnywhereError(f"The disk cache cap must be positive, got {max_bytes} bytes.")
        self.warnings: list[str] = []

    @classmethod
    def from_gb(cls, folder: Union[str, Path], max_gb: float, setting: str = "cache_max_gb",
                on_warning: Optional[Callable[[str], None]] = None) -> "SceneCache":
        """A cache capped at `max_gb` GB; `setting` names the option in the error for a bad value."""
        try:
            max_bytes = int(float(max_gb) * GB)
        except (TypeError, ValueError, OverflowError):
            max_bytes = 0
        if max_bytes <= 0:
            raise InsertAnywhereError(f"{setting} must be a positive, finite number of GB, got {max_gb!r}.")
        return cls(folder, max_bytes, on_warning=on_warning)

    key = staticmethod(scene_key)

    def path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.folder / f"{PREFIX}{key}{SUFFIX}"

    def get(self, key: str) -> Optional[SceneRecord]:
        """The cached scene, or None (missing; or damaged / foreign / old: then removed, with a warning)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            scene = SceneRecord.load(path)
            stored = scene.cache_key
            if stored != key:
                how = "it was saved outside the cache" if stored is None else f"it was stored under key {stored}"
                raise InsertAnywhereError(f"'{path}' holds a scene of other inputs ({how})")
        except InsertAnywhereError as error:
            if not path.exists():  # evicted by another run meanwhile: a plain miss
                return None
            self._warn(f"disk cache: removed an unusable entry and recomputed the scene: {error}")
            self._remove(path)
            return None
        try:
            os.utime(path)  # least recently used = oldest mtime
        except OSError:
            pass
        log.info("disk cache hit %s", path.name)
        return dataclasses.replace(scene, cache_key=None)  # the key names the file, not the scene

    def put(self, key: str, scene: SceneRecord) -> Optional[Path]:
        """Store `scene` (atomically), then evict least recently used entries down to the cap.

        Returns the entry's path, or None when it was not kept (too large for the cap on its
        own, or the folder is not writable; a warning says which)."""
        path = self.path(key)
        try:
            dataclasses.replace(scene, cache_key=key).save(path)
        except InsertAnywhereError as error:
            self._warn(f"disk cache: could not store the scene ({error}); it was computed but not cached.")
            return None
        size = _size(path)
        if self.max_bytes is not None and size > self.max_bytes:
            self._remove(path)
            self._warn(f"disk cache: this scene takes {_human(size)}, more than the whole cache cap "
                       f"({_human(self.max_bytes)}), so it was not kept; raise the cap (cache_max_gb / "
                       "--cache-max-gb) or use fewer / smaller frames.")
            self.evict(keep=None)
            return None
        self.evict(keep=path)
        return path

    def load_or_compute(self, key: str, compute: Callable[[], SceneRecord]) -> tuple[SceneRecord, list[str]]:
        """(scene, warnings of this call): a hit, or compute() stored for next time."""
        first = len(self.warnings)
        scene = self.get(key)
        if scene is None:
            scene = compute()
            self.put(key, scene)
        return scene, self.warnings[first:]

    def entries(self) -> list[tuple[Path, int, int]]:
        """(path, bytes, mtime_ns) of every entry, least recently used first."""
        found = []
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        for name in names:
            if name.startswith(PREFIX) and name.endswith(SUFFIX):
                try:
                    st = os.stat(self.folder / name)
                except OSError:  # removed meanwhile
                    continue
                found.append((self.folder / name, st.st_size, st.st_mtime_ns))
        return sorted(found, key=lambda e: (e[2], e[0].name))

    def evict(self, keep: Optional[Path] = None) -> list[Path]:
        """Remove least recently used entries (never `keep`) until the folder is under the cap;
        also stale temporary files of killed saves. Returns the entries removed."""
        self._remove_stale_temps()
        if self.max_bytes is None:
            return []
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        removed = []
        for path, size, _ in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and path == keep:
                continue
            if self._remove(path):
                removed.append(path)
                total -= size
        if removed:
            log.info("disk cache: evicted %d least recently used entries, %.0f MB left", len(removed), total / MB)
        return removed

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def _remove_stale_temps(self) -> None:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        now = time.time()
        for name in names:
            if name.startswith("." + PREFIX) and name.endswith(TEMP_SUFFIX):
                path = self.folder / name
                try:
                    if now - os.stat(path).st_mtime > STALE_TEMP_S:
                        os.unlink(path)
                except OSError:
                    pass

    def _remove(self, path: Path) -> bool:
        """True when the file is gone (removed here or by another process)."""
        try:
            os.unlink(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as error:  # e.g. open by a reader on Windows: try again after the next write
            log.warning("disk cache: could not remove %s (%s)", path, error)
            return False

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)


def _human(size: int) -> str:
    for unit, scale in (("GB", GB), ("MB", MB), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
