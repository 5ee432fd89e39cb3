"""Discrete diffusion vs autoregressive LMs on the default text corpus, at equal size and training steps.

    OMP_NUM_THREADS=1 nice -n 10 python bench/discrete.py --out /tmp/dlm_bench all

Parts (each can run alone): `train` (every model, same Transformer, same steps, batch, lr, data and seed;
test bits per character), `genppl` (generative perplexity under the AR model and unigram entropy of samples
vs denoising steps), `speed` (tokens/s), `reversal` (forward/reverse accuracy on the key-value task).
Results go to OUT/results.json; bench/RESULTS.md holds the tables written from it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

METHODS = [  # name, run name, extra model flags
    ("ngram", "ngram", ["--model-order", "6"]),
    ("ar", "ar", []),
    ("bd3lm", "bd3-4", ["--model-block", "4"]),
    ("bd3lm", "bd3-16", ["--model-block", "16"]),
    ("mdlm", "mdlm", []),
    ("sedd-absorb", "sedd-absorb", []),
    ("sedd-uniform", "sedd-uniform", []),
]
NET = ["--model-d-model", "64", "--model-n-layers", "4", "--model-n-heads", "4", "--model-eval-samples", "4"]
DATA = ["--data", "text", "--data-seq-len", "64"]


def train_flags(steps):
    return ["--train-steps", str(steps), "--train-batch-size", "32", "--train-lr", "2e-3", "--train-warmup", "50",
            "--train-lr-decay", "cosine", "--train-ema-decay", "0", "--train-threads", "1", "--train-seed", "0",
            "--train-ckpt-every", str(steps), "--no-progress"]


def cli(*args):
    out = subprocess.run([sys.executable, "-m", "deepatlas", *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return out.stdout


def part_train(out: Path, steps: int, res: dict):
    res.setdefault("train", {})
    for method, name, extra in METHODS:
        run = out / name
        if (run / "bench.json").exists():  # finished earlier (the script resumes where it stopped)
            res["train"][name] = json.loads((run / "bench.json").read_text())
            continue
        t0 = time.perf_counter()
        flags = train_flags(1 if method == "ngram" else steps)
        cli("train", method, "--out", str(run), *DATA, *flags, *(extra if method == "ngram" else NET + extra))
        t1 = time.perf_counter()
        cli("eval", str(run), "--n", "100000")
        ev = json.loads((run / "eval.json").read_text())
        from deepatlas.train.run import open_run
        m, *_ = open_run(run)
        params = sum(p.numel() for p in m.parameters())
        res["train"][name] = {"method": method, "params": params, "train_s": round(t1 - t0, 1),
                              "bits_per_char": ev["bits_per_char"], "bound": ev["bound"]}
        (run / "bench.json").write_text(json.dumps(res["train"][name]))
        print(name, res["train"][name], flush=True)


@torch.no_grad()
def gen_stats(ar, samples: torch.Tensor) -> dict:
    nll = ar.nll(samples).sum() / samples.numel()
    freq = torch.bincount(samples.flatten(), minlength=ar.vocab).double()
    p = freq[freq > 0] / freq.sum()
    return {"gen_ppl": math.exp(float(nll)), "unigram_entropy_bits": float(-(p * p.log2()).sum())}


def part_genppl(out: Path, res: dict, n: int = 32, length: int = 64):
    from deepatlas.train.run import open_run

    ar, data, *_ = open_run(out / "ar")
    empty = torch.zeros(n, 0, dtype=torch.long)
    rows = {}
    torch.manual_seed(0)
    rows["data (test split)"] = gen_stats(ar, data.test["x"][:n])
    rows["ar T=1"] = gen_stats(ar, ar.complete(empty, ar.SampleConfig(length=length, temperature=1.0)))
    mdlm, *_ = open_run(out / "mdlm")
    for steps in (8, 16, 64):
        for how in ("ancestral", "random", "low_confidence"):
            torch.manual_seed(0)
            # temperature 1 is the llada samplers' draw from p(x0 | x_t); the ancestral sampler always draws it
            extra = {} if how == "ancestral" else {"temperature": 1.0}
            name = "mdlm-ancestral" if how == "ancestral" else "llada-" + how.replace("_", "-")
            s = mdlm.complete(empty, mdlm.SampleConfig(length=length, steps=steps, sampler=name, **extra))
            rows[f"mdlm {how} steps={steps}"] = gen_stats(ar, s)
    for name in ("sedd-absorb", "sedd-uniform"):
        m, *_ = open_run(out / name)
        for steps in (8, 16, 64):
            for how in ("euler", "tweedie"):
                torch.manual_seed(0)
                rows[f"{name} {how} steps={steps}"] = gen_stats(ar, m.complete(empty, m.SampleConfig(length=length, steps=steps, sampler="sedd-" + how)))
    for name, block in (("bd3-4", 4), ("bd3-16", 16)):
        m, *_ = open_run(out / name)
        for per_block in sorted({1, block // 2, block}):
            torch.manual_seed(0)
            rows[f"{name} steps/block={per_block} (total {per_block * length // block})"] = gen_stats(
                ar, m.complete(empty, m.SampleConfig(length=length, steps=per_block)))
    res["genppl"] = rows
    for k, v in rows.items():
        print(k, v, flush=True)


def part_speed(out: Path, res: dict, n: int = 8, length: int = 64):
    from deepatlas.train.run import open_run

    ar, *_ = open_run(out / "ar")
    empty = torch.zeros(n, 0, dtype=torch.long)
    rows = {}

    def timed(key, fn):
        torch.manual_seed(0)
        fn()  # warm-up
        torch.manual_seed(0)
        t = time.perf_counter()
        s = fn()
        dt = time.perf_counter() - t
        rows[key] = {"tokens_per_s": n * length / dt, **gen_stats(ar, s)}
        print(key, rows[key], flush=True)

    timed("ar, KV cache", lambda: ar.complete(empty, ar.SampleConfig(length=length, use_cache=True)))
    timed("ar, no cache", lambda: ar.complete(empty, ar.SampleConfig(length=length, use_cache=False)))
    for name, block in (("bd3-4", 4), ("bd3-16", 16)):
        m, *_ = open_run(out / name)
        timed(f"{name}, KV cache, {block} steps/block", lambda: m.complete(empty, m.SampleConfig(length=length, use_cache=True)))
        timed(f"{name}, no cache, {block} steps/block", lambda: m.complete(empty, m.SampleConfig(length=length, use_cache=False)))
    mdlm, *_ = open_run(out / "mdlm")
    for steps in (16, 64):
        timed(f"mdlm, full sequence each step, {steps} steps",
              lambda: mdlm.complete(empty, mdlm.SampleConfig(length=length, steps=steps, sampler="mdlm-ancestral")))
    res["speed"] = rows


def part_reversal(out: Path, res: dict, steps: int):
    """100 facts, batch 128: the masked-diffusion loss is noisy (weights L/l), a larger batch and fewer facts
    let it memorise within the budget (a first try with 400 facts, batch 64, 2000-4000 steps stayed at the
    letter-entropy plateau)."""
    rows = {}
    for method in ("ar", "llada"):
        run = out / f"reversal100-{method}"
        flags = ["--data-size", "100", "--train-steps", str(steps), "--train-batch-size", "128", "--train-lr", "1e-3",
                 "--train-warmup", "50",
                 "--train-ema-decay", "0", "--train-threads", "1", "--train-ckpt-every", str(steps), "--no-progress"]
        t = time.perf_counter()
        cli("train", method, "--out", str(run), "--data", "reversal", *flags, *NET)
        dt = time.perf_counter() - t
        cli("eval", str(run))
        rows[method] = {**json.loads((run / "eval.json").read_text()), "train_s": round(dt, 1)}
        print(method, rows[method], flush=True)
    res["reversal"] = rows


def part_markdown(res: dict) -> str:
    """The tables of bench/RESULTS.md, from results.json."""
    out = []
    if "train" in res:
        out += ["| model | params | train time (s) | test bits/char |", "|---|---|---|---|"]
        for name, r in res["train"].items():
            bpc = f"{r['bits_per_char']:.3f}" + (" (bound)" if r["bound"] else "")
            params = "counts" if r["method"] == "ngram" else f"{r['params']:,}"
            out.append(f"| {name} | {params} | {r['train_s']} | {bpc} |")
        out.append("")
    if "genppl" in res:
        out += ["| samples | gen. perplexity (AR) | unigram entropy (bits) |", "|---|---|---|"]
        out += [f"| {k} | {v['gen_ppl']:.2f} | {v['unigram_entropy_bits']:.3f} |" for k, v in res["genppl"].items()]
        out.append("")
    if "speed" in res:
        out += ["| generator | tokens/s | gen. perplexity (AR) |", "|---|---|---|"]
        out += [f"| {k} | {v['tokens_per_s']:.0f} | {v['gen_ppl']:.2f} |" for k, v in res["speed"].items()]
        out.append("")
    if "reversal" in res:
        out += ["| model | forward | reverse (prompt 'B is ') | reverse by infilling '____ is B.' | train time (s) |",
                "|---|---|---|---|---|"]
        for k, v in res["reversal"].items():
            inf = f"{v['infill_reverse_accuracy']:.3f}" if "infill_reverse_accuracy" in v else "n/a"
            out.append(f"| {k} | {v['forward_accuracy']:.3f} | {v['reverse_accuracy']:.3f} | {inf} | {v['train_s']} |")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("part", choices=("all", "train", "genppl", "speed", "reversal", "markdown"))
    p.add_argument("--out", type=Path, default=Path("runs/bench-discrete"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--reversal-steps", type=int, default=2000)
    a = p.parse_args()
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "results.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    if a.part == "markdown":
        print(part_markdown(res))
        return
    res["steps"] = a.steps
    parts = ("train", "genppl", "speed", "reversal") if a.part == "all" else (a.part,)
    for part in parts:
        t = time.perf_counter()
        if part == "train":
            part_train(a.out, a.steps, res)
        elif part == "genppl":
            part_genppl(a.out, res)
        elif part == "speed":
            part_speed(a.out, res)
        else:
            part_reversal(a.out, res, a.reversal_steps)
        res.setdefault("seconds", {})[part] = round(time.perf_counter() - t, 1)
        path.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
