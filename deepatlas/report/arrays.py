"""Raw samples as arrays beside the pictures: `deepatlas sample RUN --format npz|safetensors`.

The arrays are the method's `raw_samples` (data units: see deepatlas/data/units.py). npz holds every
array, strings included (text: `tokens` and `text`); safetensors holds only numbers, so string arrays and
the sampling options go in its JSON metadata (`__metadata__`, key = array name).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from deepatlas.train.atomic import write_bytes_atomic

FORMATS = ("png", "npz", "safetensors")


def save_arrays(arrays: dict[str, np.ndarray], path: Path, fmt: str, meta: dict) -> Path:
    """Write `arrays` (+ `meta`, a JSON-able dict) to `path` with the suffix of `fmt`."""
    path = Path(path).with_suffix("." + fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, **arrays, meta=np.array(json.dumps(meta)))
        write_bytes_atomic(path, buf.getvalue())
        return path
    from safetensors.numpy import save

    numbers = {k: np.ascontiguousarray(v) for k, v in arrays.items() if v.dtype.kind in "biuf"}
    strings = {k: json.dumps(v.tolist()) for k, v in arrays.items() if v.dtype.kind not in "biuf"}
    write_bytes_atomic(path, save(numbers, metadata={**strings, "meta": json.dumps(meta)}))
    return path


def load_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """The inverse of save_arrays: (arrays, meta)."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        return {k: v for k, v in arrays.items() if k != "meta"}, json.loads(str(arrays["meta"]))
    from safetensors import safe_open
    from safetensors.numpy import load_file

    arrays = load_file(str(path))
    with safe_open(str(path), "np") as f:
        md = f.metadata() or {}
    for k, v in md.items():
        if k != "meta":
            arrays[k] = np.array(json.loads(v), dtype=np.str_)
    return arrays, json.loads(md.get("meta", "{}"))
