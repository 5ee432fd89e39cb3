"""The text models' training step with RoPE as deepatlas runs it (cos/sin once per forward, queries and keys
rotated together as x cos + [x2, x1] sin) against the form it replaced (cos/sin recomputed in every layer,
queries and keys rotated apart as [x1 cos - x2 sin, x1 sin + x2 cos]), on the same weights and batches.

    OMP_NUM_THREADS=2 python bench/rope_speed.py --json bench/results/rope_speed.json

The replaced form is written out below and patched in for its rounds. Before timing, each form takes one
step from the same weights and the same random draws; their losses and gradients are compared bit for bit.
Variants run in interleaved rounds in one process (the trainer's step: fused AdamW, clipping); a figure is
the median step time over rounds.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import throughput as T  # noqa: E402
from deepatlas.nn import transformer as TR  # noqa: E402


def _rope_per_layer(x, pos, base=10000.0):  # the replaced form: x (B, H, T, D)
    d = x.shape[-1]
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    ang = pos.to(torch.float32)[..., None] * freq
    if ang.dim() == 3:
        ang = ang[:, None]
    cos, sin = torch.cos(ang).to(x.dtype), torch.sin(ang).to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def _attention_before(self, h, pos, mask, cache, layer, store):
    B, T_, D = h.shape
    q, k, v = self.qkv(h).view(B, T_, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
    q, k = _rope_per_layer(q, pos), _rope_per_layer(k, pos)
    if cache is not None:
        k, v = cache.get(layer, k, v, store)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return self.proj(y.transpose(1, 2).reshape(B, T_, D))


def _angles_are_positions(pos, d, dtype, base=10000.0):  # the blocks then receive pos itself
    return pos


@contextmanager
def form(name: str):
    if name == "once per forward":
        yield
        return
    with mock.patch.object(TR.Attention, "forward", _attention_before), \
            mock.patch.object(TR, "rope_angles", _angles_are_positions):
        yield


FORMS = ("once per forward", "per layer (before)")


def run(case: str, rounds: int, reps: int) -> dict:
    _, base, tcfg, batch, _ = T.build(case, False)
    res = {"case": case, "threads": torch.get_num_threads(), "batch": list(batch["x"].shape), "loss": {}}
    grads = {}
    for name in FORMS:  # the same numbers: one forward and backward from the same weights and draws
        m = copy.deepcopy(base)
        with form(name):
            torch.manual_seed(1)
            loss = m.loss(batch)["loss"]
            loss.backward()
        res["loss"][name] = float(loss.detach())
        grads[name] = [p.grad.clone() for p in m.parameters() if p.grad is not None]
    res["bit_identical"] = res["loss"][FORMS[0]] == res["loss"][FORMS[1]] and all(
        torch.equal(a, b) for a, b in zip(grads[FORMS[0]], grads[FORMS[1]]))
    models = {name: copy.deepcopy(base) for name in FORMS}
    steps = {name: T.trainer_step(models[name], tcfg) for name in FORMS}

    def step(name):
        with form(name):
            steps[name](batch)

    for name in FORMS:
        step(name)  # warm-up
    times = {name: [] for name in FORMS}
    for _ in range(rounds):
        for name in FORMS:
            times[name].append(T.timed(lambda: step(name), reps))  # noqa: B023 (called at once)
    med = {k: statistics.median(v) for k, v in times.items()}
    res["ms_per_step"] = {k: 1e3 * v for k, v in med.items()}
    res["speed_up"] = med[FORMS[1]] / med[FORMS[0]]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["ar", "mdlm", "bd3lm"], help="text cases of bench/throughput.py")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, "runs": []}
    for c in args.cases:
        r = run(c, args.rounds, args.reps)
        out["runs"].append(r)
        print(json.dumps(r), flush=True)
    print("\n| case | threads | once per forward ms/step | per layer ms/step | speed-up | loss and gradients |"
          "\n|---|---|---|---|---|---|")
    for r in out["runs"]:
        ms = r["ms_per_step"]
        same = "bit-identical" if r["bit_identical"] else "DIFFER"
        print(f"| {r['case']} | {r['threads']} | {ms[FORMS[0]]:.0f} | {ms[FORMS[1]]:.0f} | {r['speed_up']:.2f}x | "
              f"{same} ({r['loss'][FORMS[0]]:.8f}) |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
