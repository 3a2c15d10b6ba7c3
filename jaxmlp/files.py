"""Crash-safe small files: each is written to a temporary sibling and renamed over the old one.

Rename is atomic on POSIX, so a crash mid-write leaves either the old file or the new one, never
half of either. Two processes that must not write one folder at once share a `FileLock`. This module
needs nothing but the standard library, so plots, studies and benchmarks can write files without
importing JAX or orbax.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
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


class FileLock:
    """An advisory lock (`fcntl.flock`) held by this process until `release()`; the kernel drops it if we die.

    The lock file is removed on release. A waiter may have opened the file just before that, so after
    locking we check that the path still names the file we locked, and start over if it does not.
    """

    def __init__(self, path: str, in_use: str):
        self.path, self.in_use, self._fd = path, in_use, None

    def acquire(self) -> FileLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise ConfigError(f"{self.in_use} (pid {holder} holds {self.path}); wait for it to finish") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None
