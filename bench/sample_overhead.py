"""Where a small sampling call's time goes: the VAE's `sample(16)` against pythae's and against the bare
network calls both make (z ~ N(0, I), decoder, sigmoid, reshape), in interleaved rounds in one process.

    OMP_NUM_THREADS=2 python bench/sample_overhead.py [--rounds 40] [--calls 200] [--n 16]

The case, its weights and the peer come from bench/throughput.py (the `vae` case and its pythae builder),
so the figures match that table's sampling column. Each round times `--calls` calls of each variant;
the median round is reported in µs per call and as a ratio to the bare network.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as T  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default: 40)")
    ap.add_argument("--calls", type=int, default=200, help="calls per variant and round (default: 200)")
    ap.add_argument("--n", type=int, default=16, help="samples per call (default: 16)")
    args = ap.parse_args()
    case, method, tcfg, batch, _ = T.build("vae", False)
    method.eval()
    _, peer_sample, *_ = T.peer_builder("pythae", method, tcfg, batch)
    n, gen, dec, shape = args.n, torch.Generator().manual_seed(0), method.decoder, method.info.shape
    T.CASES["vae"].sample_n = n  # the peer's sampler reads its n from the case
    variants = {
        "bare network: decoder(randn), sigmoid, view": lambda: torch.sigmoid(
            dec(torch.randn(n, method.latent, generator=gen))).view(n, *shape),
        "deepatlas VAE.sample(n, generator)": lambda: method.sample(n, gen),
        "deepatlas through throughput.draw": lambda: T.draw(method, n, gen),
        "pythae: decoder(randn(n, latent)).reconstruction": peer_sample,
    }
    fns = {k: torch.no_grad()(f) for k, f in variants.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for f in fns.values():
        f()
    for _ in range(args.rounds):
        for k, f in fns.items():
            times[k].append(T.timed(f, args.calls))
    med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    bare = med[next(iter(med))]
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, n = {n}, median of {args.rounds} rounds × "
          f"{args.calls} calls\n")
    print("| call | µs per call | vs bare network |\n|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} | {v / bare:.2f}x |")
    print(f"\npeer / ours (VAE.sample): {med[list(med)[3]] / med[list(med)[1]]:.2f}")


if __name__ == "__main__":
    main()
