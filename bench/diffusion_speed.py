"""Speed of our diffusion stack against diffusers (UNet2DModel + DDPMScheduler) at about equal parameter
count, on 28x28 single-channel images: training steps/s and sampling images/s (as ratios, measured
interleaved in one process), our sampler loop's overhead over bare network calls, and the training
step's FLOP utilisation against this machine's measured fp32 matmul peak.

    python bench/diffusion_speed.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from deepatlas.data.base import DataInfo
from deepatlas.registry import get


def matmul_peak(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def timed(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--train-reps", type=int, default=5)
    ap.add_argument("--sample-n", type=int, default=16)
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    import diffusers

    torch.manual_seed(0)
    info = DataInfo("image", (1, 28, 28), 10)
    spec = get("method", "ddpm").obj
    ours = spec(spec.Config(channels=32, channel_mult=(1, 2, 2), attention=True), info)
    theirs = diffusers.UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                                   layers_per_block=1, norm_num_groups=8, attention_head_dim=16,
                                   down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                                   up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    opt_o, opt_t = torch.optim.AdamW(ours.parameters(), 1e-4), torch.optim.AdamW(theirs.parameters(), 1e-4)
    x0 = torch.randn(args.batch, 1, 28, 28)

    def step_ours():
        opt_o.zero_grad()
        ours.loss({"x": x0})["loss"].backward()
        opt_o.step()

    def step_theirs():
        opt_t.zero_grad()
        t = torch.randint(0, 1000, (args.batch,))
        eps = torch.randn_like(x0)
        F.mse_loss(theirs(sched.add_noise(x0, eps, t), t).sample, eps).backward()
        opt_t.step()

    @torch.no_grad()
    def sample_theirs():
        sched.set_timesteps(args.sample_steps)
        x = torch.randn(args.sample_n, 1, 28, 28)
        for t in sched.timesteps:
            x = sched.step(theirs(x, t).sample, t, x).prev_sample
        return x

    def sample_ours():  # the same grid (evenly spaced DDPM timesteps) and the same ancestral (eta = 1) step
        return ours.sample(args.sample_n, None, ours.SampleConfig(sampler="ddim", steps=args.sample_steps, eta=1.0))

    for fn in (step_ours, step_theirs, sample_ours, sample_theirs):  # warm-up
        fn()
    tr_o, tr_t, sa_o, sa_t, peaks = [], [], [], [], []
    for _ in range(args.rounds):  # interleaved, so load from other processes hits both alike
        peaks.append(matmul_peak())
        tr_o.append(timed(step_ours, args.train_reps))
        tr_t.append(timed(step_theirs, args.train_reps))
        sa_o.append(timed(sample_ours, 1))
        sa_t.append(timed(sample_theirs, 1))

    # sampler overhead: the same sampling call with the network calls timed separately
    net_time = [0.0]
    inner = ours.denoiser.net.forward

    def timed_net(*a, **k):
        t = time.perf_counter()
        out = inner(*a, **k)
        net_time[0] += time.perf_counter() - t
        return out

    ours.denoiser.net.forward = timed_net
    overheads = []
    for _ in range(args.rounds):
        net_time[0] = 0.0
        total = timed(sample_ours, 1)
        overheads.append((total - net_time[0]) / total)
    ours.denoiser.net.forward = inner

    with FlopCounterMode(display=False) as fc:
        step_ours()
    flops = fc.get_total_flops()
    peak = max(peaks)  # the best 1024^3 sgemm seen, with the same threads, during the run
    med = statistics.median
    res = {
        "params_ours": sum(p.numel() for p in ours.parameters()),
        "params_diffusers": sum(p.numel() for p in theirs.parameters()),
        "batch": args.batch, "threads": torch.get_num_threads(),
        "train_steps_per_s_ours": 1 / med(tr_o), "train_steps_per_s_diffusers": 1 / med(tr_t),
        "train_ratio_ours_over_diffusers": med(tr_t) / med(tr_o),
        "sample_images_per_s_ours": args.sample_n / med(sa_o), "sample_images_per_s_diffusers": args.sample_n / med(sa_t),
        "sample_ratio_ours_over_diffusers": med(sa_t) / med(sa_o),
        "sampler_overhead_fraction": med(overheads),
        "train_step_gflop": flops / 1e9, "train_gflop_per_s": flops / med(tr_o) / 1e9,
        "matmul_peak_gflop_per_s": peak / 1e9, "mfu": flops / med(tr_o) / peak,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
