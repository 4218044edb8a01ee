"""Per-frame arrays kept on disk while the reconstruction runs, read back a window at a time.

The float32 optical flow both ways (16 bytes per grid cell per frame) is read by every pass of the
reconstruction (pose chain, bundle-adjustment pairs, moving masks, depth correction), each pass
only a few frames around the one it works on. Held in memory it was the largest whole-clip
array; here it lives in an unnamed temporary file (tempfile's folder: TMPDIR, else /tmp), and
each read returns a copy of the frames asked for, so the process holds only the windows in use.
The operating system keeps the file in its page cache while memory is plentiful (reads cost a
copy) and writes it out under pressure; the file disappears when the array is closed or
collected. The values read back are the values written, bit for bit.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Optional, Union

import numpy as np

from ...errors import InsertAnywhereError


class SpilledArray:
    """An array [N, ...] of one dtype in a temporary file.

    a[t] = value writes frame t; a[t] and a[a0:b0] (step 1) return new in-memory arrays. Safe to use
    from several threads (one lock around each seek and transfer: they are memory copies).
    """

    def __init__(self, shape: tuple[int, ...], dtype, folder: Optional[str] = None):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._frame_shape = self.shape[1:]
        self._frame_bytes = int(np.prod(self._frame_shape, dtype=np.int64)) * self.dtype.itemsize
        self._folder = folder or tempfile.gettempdir()
        self._lock = threading.Lock()
        try:
            self._file = tempfile.TemporaryFile(prefix="insertanywhere-", dir=folder, buffering=0)
        except OSError as exc:
            raise self._error(exc) from exc

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __setitem__(self, t: int, value: np.ndarray) -> None:
        frame = np.ascontiguousarray(value, self.dtype)
        if frame.shape != self._frame_shape:
            raise ValueError(f"frame of shape {frame.shape}, expected {self._frame_shape}")
        data = memoryview(frame).cast("B")
        with self._lock:
            try:
                self._file.seek(self._index(t) * self._frame_bytes)
                while data:  # an unbuffered write may take less than all
                    data = data[self._file.write(data):]
            except OSError as exc:
                raise self._error(exc) from exc

    def _error(self, exc: OSError) -> InsertAnywhereError:
        need = self._frame_bytes * self.shape[0] / 2**20
        return InsertAnywhereError(
            f"The reconstruction keeps its optical flow ({need:.0f} MiB) in a temporary file in '{self._folder}' "
            f"and cannot write it there: {exc}. Free disk space there, or set TMPDIR to a writable folder "
            "with room.")

    def __getitem__(self, key: Union[int, slice]) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("SpilledArray reads consecutive frames only (take [::-1] of the result)")
            count = max(0, stop - start)
            return self._read(start, count).reshape((count,) + self._frame_shape)
        return self._read(self._index(key), 1).reshape(self._frame_shape)

    def _index(self, t) -> int:
        t = int(t)
        if t < 0:
            t += len(self)
        if not 0 <= t < len(self):
            raise IndexError(f"frame {t} of {len(self)}")
        return t

    def _read(self, start: int, count: int) -> np.ndarray:
        out = np.empty(count * self._frame_bytes, np.uint8)
        view, done = memoryview(out), 0
        with self._lock:
            self._file.seek(start * self._frame_bytes)
            while done < len(out):  # an unbuffered read may return less than all
                got = self._file.readinto(view[done:])
                if not got:
                    raise OSError(f"the reconstruction's temporary file ended early ({done} of {len(out)} bytes)")
                done += got
        return out.view(self.dtype)

    def close(self) -> None:
        self._file.close()

    def __del__(self):
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()
