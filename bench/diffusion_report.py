"""Print the markdown tables of bench/RESULTS.md's continuous-diffusion section from the JSON files
written by diffusion_quality.py and diffusion_speed.py.

    python bench/diffusion_report.py bench/out/diffusion-digits/results.json [more results.json] [--speed speed.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def quality_table(path: Path) -> str:
    res = json.loads(path.read_text())
    s = res["setup"]
    methods = [m for m in ("ddpm", "flow", "edm") if any(r["method"] == m for r in res["rows"])]
    configs = []
    for r in res["rows"]:
        key = (r["sampler"], r["steps"], r["nfe"])
        if key not in configs:
            configs.append(key)
    fid = {(r["method"], r["sampler"], r["steps"]): r["fid"] for r in res["rows"]}
    lines = [f"**{s['data']}**: {s['train_steps']} steps x batch {s['batch']}, U-Net channels {s['channels']} "
             f"mult {tuple(s['mult'])}, FID from {s['n_fid']} samples against the {s['n_reference']} test images "
             f"(in-domain classifier features).", "",
             "| sampler | steps | NFE | " + " | ".join(f"FID {m}" for m in methods) + " |",
             "|---|---|---|" + "---|" * len(methods)]
    for sampler, steps, nfe in configs:
        cells = [f"{fid[(m, sampler, steps)]:.2f}" if (m, sampler, steps) in fid else "—" for m in methods]
        lines.append(f"| {sampler} | {steps} | {nfe} | " + " | ".join(cells) + " |")
    train = res.get("train", {})
    if train:
        lines += ["", "Training wall time (shared, loaded machine): " + ", ".join(
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
