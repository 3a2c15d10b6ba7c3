"""A strict reader for LeCun's IDX format (the original MNIST files).

Layout: two zero bytes, a type byte (0x08 = unsigned byte), a byte giving the
number of dimensions, one big-endian uint32 per dimension, then the data in
C order. Every check happens *before* any large allocation, so a header that
claims 10^9 images fails at once instead of asking for 784 GB.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from jaxmlp.errors import DataError

_UBYTE = 0x08
_CHUNK = 1 << 20
# Refuse anything bigger than this many bytes of pixel data (about 16 x MNIST).
MAX_BYTES = 1 << 30


def _read_at_most(path: str, limit: int) -> bytes:
    """Read up to `limit` bytes (decompressing .gz), in chunks so memory follows the real size."""
    opener = gzip.open if path.endswith(".gz") else open
    chunks, total = [], 0
    try:
        with opener(path, "rb") as f:
            while total < limit:
                chunk = f.read(min(_CHUNK, limit - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{path}: not a readable {'gzip' if opener is gzip.open else 'IDX'} file ({e}); re-download it"
        ) from None
    return b"".join(chunks)


def read_idx(path: str, expected_ndim: int) -> np.ndarray:
    """Return the array stored in one IDX file, or raise `DataError` saying what is wrong."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file; point --data-dir at a folder with train-* and t10k-* IDX files")
    head = _read_at_most(path, 4)
    if len(head) < 4:
        raise DataError(f"{path}: file too short for an IDX header ({len(head)} bytes); re-download it")
    if head[0] != 0 or head[1] != 0 or head[2] != _UBYTE:
        raise DataError(
            f"{path}: wrong magic number 0x{head.hex()} (expected 0x000008{expected_ndim:02x}); "
            "not an unsigned-byte IDX file"
        )
    ndim = head[3]
    if ndim != expected_ndim:
        raise DataError(
            f"{path}: has {ndim} dimensions, expected {expected_ndim}; images need 3 (count, rows, cols) and labels 1"
        )
    header_len = 4 + 4 * ndim
    header = _read_at_most(path, header_len)
    if len(header) < header_len:
        raise DataError(f"{path}: truncated header; re-download it")
    dims = tuple(int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise DataError(f"{path}: holds no data (dimensions {dims})")
    size = int(np.prod(dims, dtype=np.int64))
    if size > MAX_BYTES:
        raise DataError(
            f"{path}: header claims {dims} = {size:,} bytes, over the {MAX_BYTES:,}-byte limit; the file is corrupt"
        )
    raw = _read_at_most(path, header_len + size + 1)
    if len(raw) < header_len + size:
        raise DataError(
            f"{path}: truncated: header promises {size:,} data bytes, "
            f"file has {len(raw) - header_len:,}; re-download it"
        )
    if len(raw) > header_len + size:
        raise DataError(f"{path}: has bytes after the {size:,} its header promises; the file is corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims)


def write_idx(path: str, array: np.ndarray) -> None:
    """Write `array` (uint8) as IDX, gzip-compressed when `path` ends in .gz. Used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UBYTE, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
