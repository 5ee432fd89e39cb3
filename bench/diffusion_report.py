"""Print the markdown tables of bench/RESULTS.md's continuous-diffusion section from the JSON files
written by diffusion_quality.py and diffusion_speed.py.

    python bench/diffusion_report.py bench/out/diffusion-digits/results.json [more results.json] [--speed speed.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def quality_table(path: Path) -> str:
    """One table per n: FID (its ratio to the real-vs-real floor) and KID x 10^3 for each model."""
    res = json.loads(path.read_text())
    s = res["setup"]
    methods = [m for m in ("ddpm", "flow", "edm") if any(r["method"] == m for r in res["rows"])]
    rows = {(r["method"], r["sampler"], r["steps"], r.get("n", s["n_fid"])): r for r in res["rows"]}
    lines = []
    for n in sorted({k[3] for k in rows}):
        configs = []
        for (m, sampler, steps, n_), r in rows.items():
            if n_ == n and (sampler, steps, r["nfe"]) not in configs:
                configs.append((sampler, steps, r["nfe"]))
        any_row = next(r for k, r in rows.items() if k[3] == n)
        lines += [f"**{s['data']}**: {s['train_steps']} steps x batch {s['batch']}, U-Net channels {s['channels']} "
                  f"mult {tuple(s['mult'])}; FID and KID from n = {n} samples against the {s['n_reference']} test images "
                  f"(in-domain classifier features, {any_row['feature_dim']}-d, test accuracy {any_row['feature_acc']:.3f}). "
                  f"Floor at n = {n} (real train images): FID {any_row['fid_real']:.2f}, "
                  f"KID x 10^3 {1e3 * any_row['kid_real']:.2f}.", "",
                  "| sampler | steps | NFE | " + " | ".join(f"FID {m} (x floor) | KID {m} x 10^3" for m in methods) + " |",
                  "|---|---|---|" + "---|---|" * len(methods)]
        for sampler, steps, nfe in configs:
            cells = []
            for m in methods:
                r = rows.get((m, sampler, steps, n))
                cells += ([f"{r['fid']:.2f} ({r['fid'] / r['fid_real']:.1f}x)", f"{1e3 * r['kid']:.1f}"] if r else ["—", "—"])
            lines.append(f"| {sampler} | {steps} | {nfe} | " + " | ".join(cells) + " |")
        speed = [f"{m} {rows[(m, 'heun', 18, n)]['samples_per_s']:.1f}/s" for m in methods if (m, "heun", 18, n) in rows]
        if speed:
            lines += ["", "Sampling speed, Heun 18 steps (shared machine): " + ", ".join(speed)]
        lines.append("")
    train = res.get("train", {})
    if train:
        lines += ["Training wall time (shared, loaded machine): " + ", ".join(
            f"{m} {t['seconds'] / 60:.1f} min ({t['params'] / 1e6:.2f} M params)" for m, t in train.items())]
    return "\n".join(lines)


def speed_table(path: Path) -> str:
    r = json.loads(path.read_text())
    return "\n".join([
        f"Parameters: ours {r['params_ours'] / 1e6:.3f} M, diffusers {r['params_diffusers'] / 1e6:.3f} M; "
        f"batch {r['batch']}, {r['threads']} thread(s), 28x28x1 inputs; torch {r['torch']}, diffusers {r['diffusers']}.", "",
        "| measure | deepatlas | diffusers | ratio (ours / diffusers, higher is better) |", "|---|---|---|---|",
        f"| training steps/s (DDPM eps loss + AdamW) | {r['train_steps_per_s_ours']:.3f} | "
        f"{r['train_steps_per_s_diffusers']:.3f} | {r['train_ratio_ours_over_diffusers']:.2f} |",
        f"| sampling images/s (20 ancestral steps) | {r['sample_images_per_s_ours']:.2f} | "
        f"{r['sample_images_per_s_diffusers']:.2f} | {r['sample_ratio_ours_over_diffusers']:.2f} |", "",
        f"- Sampler loop overhead over bare network calls: {100 * r['sampler_overhead_fraction']:.1f}% of sampling time.",
        f"- Training step: {r['train_step_gflop']:.1f} GFLOP (torch FlopCounterMode, forward + backward) at "
        f"{r['train_gflop_per_s']:.1f} GFLOP/s = {100 * r['mfu']:.0f}% of the best fp32 1024^3 matmul measured in the "
        f"same run ({r['matmul_peak_gflop_per_s']:.1f} GFLOP/s with the same threads)."])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="*", type=Path)
    ap.add_argument("--speed", type=Path)
    args = ap.parse_args()
    for p in args.results:
        print(quality_table(p), end="\n\n")
    if args.speed:
        print(speed_table(args.speed))


if __name__ == "__main__":
    main()
