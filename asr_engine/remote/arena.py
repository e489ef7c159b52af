"""Shared memory for segment samples: one file-backed mapping per front-end, and its allocator.

The front-end creates the file (in ``/dev/shm`` when it has room, else the temporary directory), writes
a segment's samples into a free block and names the block in its message; the engine process maps
the same file and reads the block in place, so samples cross the process boundary with one copy. A
block is freed when the segment's result comes back.

The file is a plain ``os.open`` + ``mmap`` rather than ``multiprocessing.shared_memory``: its space is
reserved with ``posix_fallocate``, so a full ``/dev/shm`` fails at startup with an error instead of
killing the process with SIGBUS at the first write, and the server can sweep its files by name after a
crash without a resource tracker.

Where ``/dev/shm`` is too small (a container's default is 64 MiB), the arena is an anonymous memory file
(``memfd_create``) that the engine opens through ``/proc/<pid>/fd/<n>``: memory-backed like ``/dev/shm``
but not bound by that mount's size. A file in the temporary directory, the fallback before, is backed by
the page cache, whose write-back to disk competes with the engine's reads.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import logging
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ArenaAllocator", "SharedArena", "arena_directory"]

log = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
GRAIN = 256  # bytes; blocks start on this boundary (float32 and cache-line aligned)


def arena_directory(total_bytes: int) -> Path | None:
    """``/dev/shm`` if it can hold ``total_bytes`` more; else None (anonymous memory files, where the
    system has ``memfd_create``) or, failing that, the temporary directory (page cache)."""
    try:
        stat = os.statvfs(SHM_DIR)
        free = stat.f_bavail * stat.f_frsize
        if free >= total_bytes * 1.1:
            return SHM_DIR
    except OSError:
        free = 0
    fallback = "anonymous memory files" if hasattr(os, "memfd_create") else tempfile.gettempdir()
    log.info(
        "/dev/shm has %d MiB free, the arenas need %d MiB: using %s", free >> 20, total_bytes >> 20, fallback
    )
    return None if hasattr(os, "memfd_create") else Path(tempfile.gettempdir())


def _reserve(fd: int, size: int, what: str) -> None:
    """Give the file behind ``fd`` ``size`` bytes of real space, or raise OSError naming ``what``.

    A file system without fallocate gets a sparse file instead, as ``multiprocessing.shared_memory`` makes.
    """
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise OSError(exc.errno, f"cannot reserve {size >> 20} MiB of {what}") from exc
        os.ftruncate(fd, size)


class SharedArena:
    """A shared mapping of ``size`` bytes backed by the file at ``path``."""

    def __init__(
        self, path: Path, size: int, mapping: mmap.mmap, *, owner: bool, fd: int | None = None
    ) -> None:
        self.path = path
        self.size = size
        self._mapping: mmap.mmap | None = mapping
        self._owner = owner
        self._fd = fd  # an anonymous arena's memory file, kept open so that its /proc path stays valid

    @classmethod
    def create(cls, path: Path, size: int) -> SharedArena:
        """A new file with its space reserved; fails clearly when the file system cannot hold it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                _reserve(fd, size, f"shared memory in {path.parent}")
            except OSError:
                os.unlink(path)
                raise
            mapping = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(path, size, mapping, owner=True)

    @classmethod
    def create_anonymous(cls, size: int, name: str = "lingting-arena") -> SharedArena:
        """An anonymous memory file of ``size`` bytes (reserved), named by its ``/proc/<pid>/fd`` path."""
        fd = os.memfd_create(name)
        try:
            _reserve(fd, size, "memory for an arena")
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        return cls(Path(f"/proc/{os.getpid()}/fd/{fd}"), size, mapping, owner=False, fd=fd)

    @classmethod
    def attach(cls, path: Path, size: int) -> SharedArena:
        fd = os.open(path, os.O_RDWR)
        try:
            if os.fstat(fd).st_size < size:
                raise ValueError(f"{path} is smaller than the announced {size} bytes")
            mapping = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(path, size, mapping, owner=False)

    def array(self, offset: int, count: int) -> np.ndarray:
        """``count`` float32 samples at byte ``offset``: a view into the mapping, not a copy."""
        if self._mapping is None:
            raise ValueError("the arena is closed")
        if offset < 0 or count < 0 or offset + 4 * count > self.size:
            raise ValueError(f"block {offset}+{4 * count} is outside the arena of {self.size} bytes")
        return np.frombuffer(self._mapping, dtype=np.float32, count=count, offset=offset)

    def close(self) -> None:
        """Unmap (or leave that to the last view still alive) and, when this side created it, unlink."""
        mapping, self._mapping = self._mapping, None
        if mapping is not None:
            with contextlib.suppress(BufferError):
                mapping.close()
        if self._owner:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class ArenaAllocator:
    """First-fit blocks of ``GRAIN``-byte units over ``[0, size)``; freed blocks merge with neighbours.

    Results come back out of order (batches are sorted by length), so a ring would stall behind its
    oldest block; a free list over a few dozen blocks in flight costs microseconds.
    """

    def __init__(self, size: int) -> None:
        self.size = size - size % GRAIN
        self._starts: list[int] = [0]  # free blocks, sorted by start
        self._lengths: list[int] = [self.size]
        self.used = 0

    @staticmethod
    def rounded(nbytes: int) -> int:
        return max(GRAIN, -(-nbytes // GRAIN) * GRAIN)

    def alloc(self, nbytes: int) -> int | None:
        """The start of a free block of at least ``nbytes``, or None when none is free now."""
        need = self.rounded(nbytes)
        for i, length in enumerate(self._lengths):
            if length >= need:
                start = self._starts[i]
                if length == need:
                    del self._starts[i], self._lengths[i]
                else:
                    self._starts[i] = start + need
                    self._lengths[i] = length - need
                self.used += need
                return start
        return None

    def free(self, start: int, nbytes: int) -> None:
        length = self.rounded(nbytes)
        self.used -= length
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start + length:  # merge with the next block
            length += self._lengths[i]
            del self._starts[i], self._lengths[i]
        if i > 0 and self._starts[i - 1] + self._lengths[i - 1] == start:  # and with the previous one
            self._lengths[i - 1] += length
        else:
            self._starts.insert(i, start)
            self._lengths.insert(i, length)
