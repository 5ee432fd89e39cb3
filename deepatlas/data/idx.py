"""The IDX format of (Fashion-)MNIST: a 4-byte magic (0, 0, dtype code, number of dims), the dims as
big-endian uint32, then the values. Files may be gzip-compressed. Every defect is a one-line UserError.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from deepatlas.errors import UserError

DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
          0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array, checking the magic number and that the header tells the truth."""
    if len(raw) < 4:
        raise UserError(f"{name}: not an IDX file (only {len(raw)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or code not in DTYPES or ndim == 0:
        raise UserError(f"{name}: not an IDX file (magic bytes {raw[:4].hex()}; expected 0000 then a type code and a dim count)")
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"{name}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    dtype = DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a lying header cannot overflow this
    body = len(raw) - 4 - 4 * ndim
    if body != expected:
        what = "truncated" if body < expected else "longer than its header says"
        raise UserError(f"{name}: IDX file {what}: header {dims} needs {expected} data bytes, file has {body}")
    try:
        values = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
    except ValueError as e:  # e.g. dims (0, 2^21, 2^21, 2^21): no data, but a shape numpy cannot hold
        raise UserError(f"{name}: IDX header {dims} describes an array numpy cannot hold ({e})") from None
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path, hint: str = "") -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}" + (f"; {hint}" if hint else ""))
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"{path}: cannot read or decompress ({e}); re-download or reinstall the file") from None
    return parse_idx(raw, str(path))
