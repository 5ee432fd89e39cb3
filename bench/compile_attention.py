"""Two speed options that the throughput bench leaves at their defaults, measured on a default training step:
torch.compile (inductor, where it builds here) and the attention path (F.scaled_dot_product_attention
against the same attention written out as softmax(q k^T / sqrt(d) + mask) v, and against SDPA told
`is_causal=True` where the model passes the causal mask as a boolean tensor).

    OMP_NUM_THREADS=2 python bench/compile_attention.py --cases ar mdlm ddpm --json bench/out/compile.json

Each case's method, batch and trainer step are those of bench/throughput.py (the method's own defaults).
Variants run in INTERLEAVED rounds in one process (eager, manual-attention, compiled, eager, ...); a
figure is the median step time over rounds, a comparison the ratio of medians. Before timing, every variant
takes one step from the same weights on the same batch and its loss is compared with eager's: a speed-up
that changes the result is reported as such. Each variant then takes one untimed warm-up step (the
compiled one builds its backward graph there); compilation (the first forward, and that warm-up step) is
reported on its own.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from throughput import build, trainer_step  # noqa: E402

SDPA = F.scaled_dot_product_attention


def manual_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v, written out: what SDPA computes, without its fused kernel."""
    s = (q @ k.transpose(-2, -1)) * (scale or 1.0 / math.sqrt(q.shape[-1]))  # (B, H, T, S)
    if is_causal:
        attn_mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    return torch.softmax(s, -1) @ v


def causal_flag_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """SDPA, but a boolean mask that is exactly the square lower triangle is passed as is_causal=True (the
    flash kernel can then skip the blocks above the diagonal); other masks unchanged. The check is in the
    timed call (a T x T comparison)."""
    if (attn_mask is not None and attn_mask.dtype == torch.bool and attn_mask.dim() == 2
            and attn_mask.shape[0] == attn_mask.shape[1] == q.shape[-2] == k.shape[-2]
            and torch.equal(attn_mask, torch.ones_like(attn_mask).tril())):
        return SDPA(q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale)
    return SDPA(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)


VARIANTS = {"eager (sdpa)": SDPA, "manual attention": manual_attention, "sdpa is_causal": causal_flag_attention}


def attention(variant: str):
    """Context: the attention function of `variant` behind F.scaled_dot_product_attention, which the model
    modules call through F."""
    return mock.patch.object(F, "scaled_dot_product_attention", VARIANTS.get(variant, SDPA))


def first_loss(method, batch) -> float:
    torch.manual_seed(0)
    return float(sum(float(c()["loss"].detach()) for _, c in method.train_phases(batch)))


def run(name: str, rounds: int, reps: int) -> dict:
    case, method, tcfg, batch, _ = build(name, quick=False)
    variants = {k: copy.deepcopy(method) for k in VARIANTS}
    res = {"case": name, "method": case.method, "threads": torch.get_num_threads(), "batch": len(batch["x"])}
    compiled = copy.deepcopy(method)
    try:
        compiled.loss = torch.compile(compiled.loss)  # what train_phases' closures call
        t0 = time.perf_counter()
        loss_c = first_loss(compiled, batch)
        res["compile_first_call_s"] = round(time.perf_counter() - t0, 1)
        variants["torch.compile"] = compiled
    except Exception as e:  # noqa: BLE001 - a build failure is a result here
        res["compile_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        loss_c = None
    res["loss"] = {"torch.compile": loss_c}
    for k in VARIANTS:
        with attention(k):
            res["loss"][k] = first_loss(variants[k], batch)
    steps = {k: trainer_step(m, tcfg) for k, m in variants.items()}
    for k, step in steps.items():  # warm-up: the compiled variant builds its backward graph here
        with attention(k):
            t = time.perf_counter()
            step(batch)
            res.setdefault("first_step_s", {})[k] = round(time.perf_counter() - t, 1)
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, step in steps.items():
            with attention(k):
                t = time.perf_counter()
                for _ in range(reps):
                    step(batch)
                times[k].append((time.perf_counter() - t) / reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    res["steps_per_s"] = {k: 1 / v for k, v in med.items()}
    res["speed_vs_eager"] = {k: med["eager (sdpa)"] / v for k, v in med.items()}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=["ar", "mdlm", "ddpm"], help="cases of bench/throughput.py")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3, help="training steps per round")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, "cases": []}
    for name in args.cases:
        r = run(name, args.rounds, args.reps)
        out["cases"].append(r)
        print(json.dumps(r), flush=True)
    print("\n| case | threads | variant | steps/s | vs eager | first-step loss | compile s (forward + warm-up step) |\n|---|---|---|---|---|---|---|")
    for r in out["cases"]:
        for k, v in r["steps_per_s"].items():
            cs = (f"{r['compile_first_call_s']} + {r['first_step_s'][k]}" if k == "torch.compile" else "")
            print(f"| {r['case']} | {r['threads']} | {k} | {v:.2f} | {r['speed_vs_eager'][k]:.2f}x | {r['loss'][k]:.5f} | {cs} |")
        if "compile_error" in r:
            print(f"| {r['case']} | {r['threads']} | torch.compile | failed: {r['compile_error']} | | | |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
