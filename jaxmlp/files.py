"""Crash-safe small files: each is written to a temporary sibling and renamed over the old one.

Rename is atomic on POSIX, so a crash mid-write leaves either the old file or the new one, never
half of either. Two processes that must not write one folder at once share a `FileLock`. This module
needs nothing but the standard library, so plots, studies and benchmarks can write files without
importing JAX or orbax.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
from typing import Any

from jaxmlp.errors import ConfigError


def write_atomic(path: str, data: bytes | str) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a failed write names no file: name ours
            raise OSError(e.errno, e.strerror, path) from None
        raise


def write_json(path: str, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2) + "\n")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def refuse_link(path: str) -> None:
    """One line naming `path` when a symlink stands where jaxmlp keeps a file or folder of its own."""
    if os.path.islink(path):
        raise ConfigError(
            f"{path} is a symlink (to {os.readlink(path)}) where jaxmlp keeps its own file; jaxmlp does not write "
            "through links: remove the link"
        )


def open_nofollow(path: str, flags: int, mode: int = 0o666) -> int:
    """`os.open` that never follows a symlink at `path` (one line naming it instead) and never blocks on a FIFO.

    A file that is not a regular file (a FIFO, a device, a folder) is refused too."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP or (e.errno == errno.EEXIST and os.path.islink(path)):
            refuse_link(path)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"{path} is not a regular file where jaxmlp keeps its own file; move it away")
    os.set_blocking(fd, True)
    return fd


class FileLock:
    """An advisory lock (`fcntl.flock`) held by this process until `release()`; the kernel drops it if we die.

    The lock file is opened without following a symlink, so a link planted at its path is refused (one line)
    rather than written through. It is removed on release. A waiter may have opened the file just before that,
    so after locking we check that the path still names the file we locked, and start over if it does not.
    `wait(message)`, if given, is called once and the lock is then waited for instead of refused.
    """

    def __init__(self, path: str, in_use: str, wait=None):
        self.path, self.in_use, self.wait, self._fd = path, in_use, wait, None

    def acquire(self) -> FileLock:
        while True:
            fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                if self.wait is None:
                    os.close(fd)
                    raise ConfigError(
                        f"{self.in_use} (pid {holder} holds {self.path}); wait for it to finish"
                    ) from None
                self.wait(f"{self.in_use} (pid {holder}); waiting for it")
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(self.path, fd):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        if _same_file(self.path, self._fd):  # never unlink what another process put at the path since
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def holder(path: str) -> str | None:
        """The pid (as written) of the process holding the lock at `path`, or None when it is free; reads only."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None  # no lock file (or a link, which no jaxmlp process holds)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 32).decode(errors="replace").strip() or "?"
        finally:
            os.close(fd)  # closing drops the shared lock, if taken
        return None


def _same_file(path: str, fd: int) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return (st.st_ino, st.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
