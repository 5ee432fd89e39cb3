"""Fuzzing the parsers of files a user hands us: IDX (plain and gzip), safetensors weights, the optimizer
state (torch.load with weights_only=True), a run's config.json and state.json. Property: each returns a
well-formed result or raises UserError (a one-line message); never another exception, a crash or a hang.

The default run tries a few hundred cases per parser; `-m slow` tries DEEPATLAS_FUZZ_CASES (default
3000) per parser. Random bytes alone rarely get past a magic number, so each parser also gets
structured cases: a valid header with random fields, and a valid file with random edits.
"""

import gzip
import io
import json
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from fuzzing import JSON, REFUSED, edits, one_line, run_both, tmpfile
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from deepatlas.config import option
from deepatlas.data.idx import DTYPES, parse_idx, read_idx
from deepatlas.train.checkpoint import Checkpointer, load_optimizer_state, load_weights

# --- IDX ----------------------------------------------------------------------------------------

def _idx_case(data) -> bytes:
    kind = data.draw(st.sampled_from(["random", "header", "valid-edited"]))
    if kind == "random":
        return data.draw(st.binary(max_size=64))
    if kind == "header":  # a plausible magic with random dims and a body of random length
        ndim = data.draw(st.integers(0, 6))
        code = data.draw(st.sampled_from(sorted(DTYPES) + [0x07, 0xFF]))
        dims = data.draw(st.lists(st.one_of(st.integers(0, 5), st.integers(0, 2**32 - 1)), min_size=ndim, max_size=ndim))
        body = data.draw(st.binary(max_size=256))
        return struct.pack(">HBB", 0, code, ndim) + struct.pack(f">{ndim}I", *dims) + body
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    code = data.draw(st.sampled_from(sorted(DTYPES)))
    a = np.arange(int(np.prod(shape))).astype(DTYPES[code]).reshape(shape)
    raw = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + a.tobytes()
    return edits(data, raw) if data.draw(st.booleans()) else raw


def check_idx(data):
    raw = _idx_case(data)
    a = one_line(parse_idx, raw)
    if a is REFUSED:
        return
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    assert a.shape == dims and a.dtype == DTYPES[raw[2]].newbyteorder("=")
    assert a.nbytes == len(raw) - 4 - 4 * ndim


def check_idx_gzip(data):
    raw = gzip.compress(_idx_case(data))
    if data.draw(st.booleans()):
        raw = edits(data, raw)
    d, p = tmpfile(raw, "x.gz")
    with d:
        one_line(read_idx, p)


test_fuzz_idx, test_fuzz_idx_slow = run_both(check_idx)
test_fuzz_idx_gzip, test_fuzz_idx_gzip_slow = run_both(check_idx_gzip)


# --- safetensors --------------------------------------------------------------------------------

DT = ["F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL", "F8_E4M3", "XYZ", "", 3]


def _safetensors_case(data) -> bytes:
    kind = data.draw(st.sampled_from(["random", "header", "valid-edited"]))
    if kind == "random":
        return data.draw(st.binary(max_size=64))
    if kind == "header":
        n = data.draw(st.integers(0, 3))
        header = {}
        for i in range(n):
            shape = data.draw(st.lists(st.one_of(st.integers(0, 4), st.integers(-2, 2**40)), max_size=3))
            a = data.draw(st.integers(-1, 64))
            b = data.draw(st.integers(-1, 2**33))
            header[data.draw(st.sampled_from([f"t{i}", "ema.w", ""]))] = {
                "dtype": data.draw(st.sampled_from(DT)), "shape": shape, "data_offsets": [a, b]}
        if data.draw(st.booleans()):
            header["__metadata__"] = data.draw(st.sampled_from([{"step": "1"}, {"a": 1}, [], "x"]))
        text = json.dumps(header).encode()
        length = data.draw(st.sampled_from([len(text), len(text) + 1, max(len(text) - 1, 0), 2**63]))
        return struct.pack("<Q", length) + text + data.draw(st.binary(max_size=128))
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "ema.w": torch.ones(2, 3)}
    return edits(data, st_save(tensors, {"step": "3"}))


def check_safetensors(data):
    d, p = tmpfile(_safetensors_case(data), "model.safetensors")
    with d:
        out = one_line(load_weights, p)
        if out is REFUSED:
            return
        raw, ema = out
        assert all(isinstance(v, torch.Tensor) for v in [*raw.values(), *ema.values()])


test_fuzz_safetensors, test_fuzz_safetensors_slow = run_both(check_safetensors)


# --- optimizer state (torch.load, weights_only=True) ----------------------------------------------

def _valid_optimizer_bytes() -> bytes:
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([w])
    w.grad = torch.ones(3)
    opt.step()
    buf = io.BytesIO()
    torch.save({"model": opt.state_dict()}, buf)
    return buf.getvalue()


VALID_OPT = _valid_optimizer_bytes()


def check_optimizer_state(data):
    raw = data.draw(st.binary(max_size=64)) if data.draw(st.booleans()) else edits(data, VALID_OPT)
    d, p = tmpfile(raw, "optimizer.pt")
    with d:
        state = one_line(load_optimizer_state, p)
        assert state is REFUSED or isinstance(state, dict)


test_fuzz_optimizer_state, test_fuzz_optimizer_state_slow = run_both(check_optimizer_state)


# --- config.json and state.json -------------------------------------------------------------------

VALID_CONFIG = {"method": "toy-test", "data": {"name": "toy2d", "size": 64},
                "model": {"width": 8}, "train": {"steps": 10, "lr": 0.01}}


class _Toy:
    @dataclass
    class Config:
        width: int = option(8, "width", low=1)
        act: str = option("tanh", "activation", choices=("tanh", "relu"))
        dims: tuple = option((1, 2), "a tuple field")


def check_config(data):
    from deepatlas import registry
    from deepatlas.train.run import RunConfig

    registry._TABLES["method"]["toy-test"] = registry.Entry("toy-test", "test", "fuzz only", _Toy)
    try:
        if data.draw(st.booleans()):
            d = data.draw(JSON)
        else:  # a valid config with one entry replaced
            d = json.loads(json.dumps(VALID_CONFIG))
            section = data.draw(st.sampled_from(["data", "model", "train", None]))
            target = d if section is None else d[section]
            key = data.draw(st.sampled_from(sorted(target) + ["steps", "act", "dims", "seed", "extra"]))
            target[key] = data.draw(JSON)
        cfg = one_line(RunConfig.from_dict, d)
        assert cfg is REFUSED or (cfg.train.steps >= 1 and isinstance(cfg.train.steps, int))
    finally:
        registry._TABLES["method"].pop("toy-test", None)


def check_state_json(data):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "checkpoints" / "step-00000001"
        folder.mkdir(parents=True)
        raw = json.dumps(data.draw(JSON)).encode() if data.draw(st.booleans()) else data.draw(st.binary(max_size=32))
        (folder / "state.json").write_bytes(raw)
        (folder / "model.safetensors").write_bytes(st_save({"w": torch.ones(2)}))
        (folder / "optimizer.pt").write_bytes(VALID_OPT)
        ck = Checkpointer(Path(d))
        assert ck.latest_step() is None or ck.latest_step() >= 0
        saved = one_line(ck.load)
        assert saved is REFUSED or (isinstance(saved.step, int) and saved.step >= 0)


test_fuzz_config, test_fuzz_config_slow = run_both(check_config)
test_fuzz_state_json, test_fuzz_state_json_slow = run_both(check_state_json)
