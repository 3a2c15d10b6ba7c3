"""Crash-safe small files: each is written to a temporary sibling and renamed over the old one.

Rename is atomic on POSIX, so a crash mid-write leaves either the old file or the new one, never
half of either. This module needs nothing but the standard library, so plots, studies and
benchmarks can write files without importing JAX or orbax.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any


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
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: str, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2) + "\n")
