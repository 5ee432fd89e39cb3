"""Quality per CPU-minute: training and sampling speed of a representative (the default) configuration of
every family, beside its peer library where one exists, and FLOP utilisation against this machine's
measured peak.

    nice -n 15 python bench/throughput.py                 # every case, 2 threads, 5 interleaved rounds
    nice -n 15 python bench/throughput.py --quick         # smoke test, tiny sizes (~1-2 minutes)
    python bench/throughput.py --cases ar mdlm --threads 1 2 --json out.json

How it measures:
- Each case runs in its own subprocess (peak memory is per case, a crash is one row), with the thread
  count fixed there. Ours and the peer are built on the same batch and timed in INTERLEAVED rounds
  (ours, peer, ours, peer, ...) in that one process; a figure is the median over rounds, a comparison is
  the ratio of medians, so load from other processes hits both alike.
- A training step is the trainer's own (`train_phases` closures, the trainer's AdamW from
  `make_optimizers`, gradient clipping, EMA where the method's defaults keep one). The peer's step does
  the same work the peer's way (its model, its loss), with the same AdamW and clipping.
- Peak memory: the rise of the process's resident-set high-water mark over two steps (Linux
  /proc/self/clear_refs resets it between ours and the peer), so activations + gradients + optimizer state.
- FLOP utilisation: FLOPs of one step (torch.utils.flop_counter: matmuls, convolutions, attention;
  elementwise ops are not counted) / median step time / the machine's peak at the same thread count. The
  peak is the best of several sgemm shapes (square 512..4096 and skinny ones) and of oneDNN conv2d shapes
  of our U-Net, measured in a subprocess per thread count at the start of the run.

Sampling goes through `draw()` below, the one place that knows each family's sampling entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


# ----------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    method: str
    family: str
    data: dict = field(default_factory=dict)   # DataConfig overrides on top of the method's defaults
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    peer: str = ""                             # name of a peer builder below, "" where none exists
    unit: str = "examples"                     # examples or tokens per step
    sample_n: int = 16


CASES: dict[str, Case] = {  # the cases with a peer first
    "ddpm-unet28": Case("ddpm", "continuous diffusion", model={"channels": 32, "channel_mult": (1, 2, 2),
                                                                "attention": True},
                        train={"batch_size": 32, "ema_decay": 0.0}, peer="diffusers"),
    "ar": Case("ar", "language", peer="gpt2", unit="tokens", sample_n=8),
    "vae": Case("vae", "generative", peer="pythae"),
    "realnvp": Case("realnvp", "generative", peer="normflows"),
    "simclr": Case("simclr", "representation", peer="pml"),
    "ddpm": Case("ddpm", "continuous diffusion", sample_n=4),  # digits defaults, the default sampler
    "mdlm": Case("mdlm", "discrete diffusion", unit="tokens", sample_n=8),
    "llada": Case("llada", "discrete diffusion", unit="tokens", sample_n=8),
    "bd3lm": Case("bd3lm", "discrete diffusion", unit="tokens", sample_n=8),
    "sedd-absorb": Case("sedd-absorb", "discrete diffusion", unit="tokens", sample_n=8),
    "gan": Case("gan", "generative"),
    "made": Case("made", "generative"),
    "cpc": Case("cpc", "representation"),
    "yolov1": Case("yolov1", "vision", sample_n=8),
    "fcos": Case("fcos", "vision", sample_n=8),
    "centernet": Case("centernet", "vision", sample_n=8),
    "pointnet": Case("pointnet", "pointcloud"),
}

# --quick: tiny sizes so that every case builds, steps and samples in seconds
QUICK = {"text": {"data": {"seq_len": 32}, "train": {"batch_size": 8}, "model": {"steps": 8}},
         "other": {"train": {"batch_size": 8}, "model": {"sample_steps": 10}}}


def draw(method, n: int, generator: torch.Generator, **opts):
    """One sampling call of `method`: the single adapter between this bench and the methods' sampling
    entry point `sample(n, generator, opts)` (detectors and encoders: inference on n test inputs).
    The caller seeds one generator per case and passes it to every call, as a user drawing repeatedly
    would; the peers draw from torch's global stream."""
    import dataclasses

    kind = method.info.kind
    if kind == "scene":  # detectors: inference on n test images
        return method.detect(_SCENES[0][:n])
    if method.SampleConfig is not None:
        cfg = dataclasses.replace(method.sample_defaults(), **opts) if opts else None
        return method.sample(n, generator, cfg)
    if hasattr(method, "embed"):
        return method.embed(_EMBED[0][:n])
    return method(_EMBED[0][:n])  # e.g. PointNet: class logits of n clouds


_SCENES: list = [None]
_EMBED: list = [None]


# ------------------------------------------------------------------------------------------ measuring
def timed(fn: Callable, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def rss_rise(fn: Callable, reps: int = 2) -> float:
    """MiB by which the resident set's high-water mark rises above the current RSS while fn runs."""
    def status(key):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return float("nan")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        before = status("VmRSS:")
        for _ in range(reps):
            fn()
        return status("VmHWM:") - before
    except OSError:  # not Linux: the process-wide maxrss instead
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for _ in range(reps):
            fn()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before


def step_flops(fn: Callable) -> int | None:
    """FLOPs of one call of fn; None where the counter cannot follow it (FlopCounterMode refuses the
    double backward of WGAN-GP's gradient penalty: "A leaf node was passed to _will_engine_execute_node")."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as fc:
            fn()
    except RuntimeError as e:
        if "_will_engine_execute_node" not in str(e):
            raise
        return None
    return fc.get_total_flops()


def peak(quick: bool, reps: int = 3) -> dict:
    """Best fp32 GFLOP/s of sgemm and conv2d shapes at the current thread count."""
    torch.manual_seed(0)
    shapes = [(512, 512, 512), (1024, 1024, 1024), (4096, 256, 1024), (16384, 96, 384), (16384, 384, 96)]
    if not quick:
        shapes += [(2048, 2048, 2048), (4096, 4096, 4096), (8192, 128, 8192)]
    gemm = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        gemm[f"{m}x{k}@{k}x{n}"] = 2 * m * k * n / min(timed(lambda: a @ b, 1) for _ in range(reps)) / 1e9
    convs = {}
    for bsz, cin, cout, hw, ksz in [(32, 32, 32, 28, 3), (32, 64, 64, 14, 3), (32, 64, 64, 7, 3), (32, 64, 128, 14, 3)]:
        x, w = torch.randn(bsz, cin, hw, hw), torch.randn(cout, cin, ksz, ksz)
        F.conv2d(x, w, padding=1)
        flops = 2 * bsz * cout * hw * hw * cin * ksz * ksz
        convs[f"conv {bsz}x{cin}x{hw}x{hw} -> {cout}, {ksz}x{ksz}"] = \
            flops / min(timed(lambda: F.conv2d(x, w, padding=1), 1) for _ in range(reps)) / 1e9
    best = max([*gemm.values(), *convs.values()])
    return {"threads": torch.get_num_threads(), "gemm_gflops": gemm, "conv_gflops": convs, "peak_gflops": best}


# ------------------------------------------------------------------------------------------ building
def build(name: str, quick: bool):
    """The method of a case through the registry and the CLI's defaults, its dataset and one batch."""
    from deepatlas import config as C
    from deepatlas.data.base import DataConfig, DataInfo, load_dataset
    from deepatlas.registry import get, load_all
    from deepatlas.train.config import TrainConfig

    load_all()
    case = CASES[name]
    spec = get("method", case.method).obj
    defaults = getattr(spec, "defaults", {})
    q = QUICK["text" if case.unit == "tokens" else "other"] if quick else {}
    model_over = {**defaults.get("model", {}), **case.model}
    if quick:  # fewer sampling steps, where the method has such an option
        model_over.update({k: v for k, v in q.get("model", {}).items() if k in spec.Config.__dataclass_fields__})
    mcfg = C.from_dict(spec.Config, model_over)
    tcfg = C.from_dict(TrainConfig, {**defaults.get("train", {}), **case.train, **q.get("train", {})})
    if name == "ddpm-unet28":  # the diffusers comparison of bench/diffusion_speed.py: 28x28, random images
        info = DataInfo("image", (1, 28, 28), 10)
        torch.manual_seed(0)
        batch = {"x": torch.randn(tcfg.batch_size, 1, 28, 28)}
        data = None
    else:
        dcfg = C.from_dict(DataConfig, {**defaults.get("data", {}), **case.data, **q.get("data", {})})
        data = load_dataset(dcfg)
        info = data.info
        batch = data.train.get(torch.arange(tcfg.batch_size) % len(data.train))
        test = data.test.get(torch.arange(min(case.sample_n, len(data.test))))
        if info.kind == "scene":
            _SCENES[0] = test["images"] if "images" in test else test["x"]
        elif "x" in test:
            _EMBED[0] = test["x"]
    torch.manual_seed(tcfg.seed)
    method = spec(mcfg, info)
    return case, method, tcfg, batch, data


def trainer_step(method, tcfg, impl: str = "fused") -> Callable[[dict], None]:
    """The trainer's inner loop for one batch (deepatlas/train/trainer.py, one process)."""
    from deepatlas.train.ema import EMA
    from deepatlas.train.trainer import make_optimizers

    opts = make_optimizers(method, tcfg, impl)
    ema = EMA(method, tcfg.ema_decay) if tcfg.ema_decay > 0 else None
    count = [0]

    def step(batch):
        method.train()
        for group, closure in method.train_phases(batch):
            opt = opts[group]
            opt.zero_grad(set_to_none=True)
            out = closure()
            out["loss"].backward()
            if tcfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_([p for pg in opt.param_groups for p in pg["params"]], tcfg.grad_clip)
            opt.step()
        if ema is not None:
            ema.update(method, count[0])
        count[0] += 1
    return step


def peer_builder(name: str, method, tcfg, batch):
    """(peer step(batch), peer sample() or None, peer parameter count, peer version) for a case."""
    def adamw(params):
        return torch.optim.AdamW(params, lr=tcfg.lr, betas=(tcfg.beta1, tcfg.beta2), weight_decay=tcfg.weight_decay)

    def make_step(module, loss_fn, opt):
        def step(b):
            module.train()
            opt.zero_grad(set_to_none=True)
            loss_fn(b).backward()
            if tcfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(list(module.parameters()), tcfg.grad_clip)
            opt.step()
        return step

    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    if name == "diffusers":
        import diffusers

        net = diffusers.UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(32, 64, 64),
                                    layers_per_block=1, norm_num_groups=8, attention_head_dim=16,
                                    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                                    up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"))
        sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)

        def loss(b):
            x0 = b["x"]
            t = torch.randint(0, 1000, (len(x0),))
            eps = torch.randn_like(x0)
            return F.mse_loss(net(sched.add_noise(x0, eps, t), t).sample, eps)

        @torch.no_grad()
        def sample():  # the grid and step of our sample call below: 20 evenly spaced DDPM steps, ancestral
            sched.set_timesteps(20)
            x = torch.randn(CASES["ddpm-unet28"].sample_n, 1, 28, 28)
            for t in sched.timesteps:
                x = sched.step(net(x, t).sample, t, x).prev_sample
            return x
        return make_step(net, loss, adamw(net.parameters())), sample, n_params(net), "diffusers " + diffusers.__version__
    if name == "gpt2":
        import transformers

        cfg = method.cfg
        gcfg = transformers.GPT2Config(vocab_size=method.vocab + 1, n_positions=method.seq_len, n_embd=cfg.d_model,
                                       n_layer=cfg.n_layers, n_head=cfg.n_heads, n_inner=4 * cfg.d_model,
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=method.vocab,
                                       eos_token_id=None, pad_token_id=method.vocab, attn_implementation="sdpa")
        net = transformers.GPT2LMHeadModel(gcfg)

        def loss(b):  # the same quantity as ours: BOS in front, predict every token
            x = b["x"]
            inp = torch.cat([torch.full((len(x), 1), method.vocab, dtype=x.dtype), x[:, :-1]], 1)
            return F.cross_entropy(net(inp).logits.transpose(1, 2), x)

        @torch.no_grad()
        def sample():
            net.eval()
            n, L = CASES["ar"].sample_n, method.seq_len
            bos = torch.full((n, 1), method.vocab, dtype=torch.long)
            return net.generate(bos, max_new_tokens=L - 1, min_new_tokens=L - 1, do_sample=True, top_k=0,
                                use_cache=True, eos_token_id=None, pad_token_id=method.vocab)
        return (make_step(net, loss, adamw(net.parameters())), sample, n_params(net),
                "transformers " + transformers.__version__)
    if name == "pml":  # our SimCLR encoder, views and head; pytorch-metric-learning's NT-Xent loss
        from pytorch_metric_learning import __version__ as pml_version
        from pytorch_metric_learning.losses import NTXentLoss

        from deepatlas.representation.augment import views
        crit = NTXentLoss(temperature=method.cfg.temperature)

        def loss(b):
            x = b["x"]
            v = views(x, method.cfg, 2)
            z = method.head(method.encoder(v.flatten(0, 1)))  # (2B, D)
            return crit(z, torch.arange(len(x)).repeat(2))
        return (make_step(method, loss, adamw(method.parameters())), None, n_params(method),
                "pytorch-metric-learning " + pml_version)
    if name == "normflows":
        import normflows as nf

        d = method.info.shape[0]
        layers = []
        for _ in range(method.cfg.steps):
            layers += [nf.flows.AffineCouplingBlock(nf.nets.MLP([d // 2, method.cfg.hidden, method.cfg.hidden, d],
                                                                init_zeros=True)), nf.flows.Permute(d, mode="swap")]
        net = nf.NormalizingFlow(nf.distributions.DiagGaussian(d, trainable=False), layers)

        @torch.no_grad()
        def sample():
            return net.sample(CASES["realnvp"].sample_n)[0]
        return (make_step(net, lambda b: net.forward_kld(b["x"]), adamw(net.parameters())), sample, n_params(net),
                "normflows " + nf.__version__)
    if name == "pythae":  # our VAE's encoder/decoder MLPs inside pythae's VAE (its loss, reparametrisation)
        from importlib.metadata import version
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from torch import nn

        lat, dim = method.latent, method.dim
        enc_net, dec_net = method.encoder, method.decoder

        class Enc(BaseEncoder):
            def __init__(self):
                super().__init__()
                self.net = enc_net

            def forward(self, x):
                mu, logvar = self.net(x.reshape(len(x), -1)).chunk(2, -1)
                return ModelOutput(embedding=mu, log_covariance=logvar)

        class Dec(BaseDecoder):
            def __init__(self):
                super().__init__()
                self.net = dec_net

            def forward(self, z):
                return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

        import copy
        net = VAE(VAEConfig(input_dim=(dim,), latent_dim=lat, reconstruction_loss="bce"),
                  encoder=copy.deepcopy(Enc()), decoder=copy.deepcopy(Dec()))
        from pythae.data.datasets import DatasetOutput

        def loss(b):
            return net(DatasetOutput(data=b["x"].reshape(len(b["x"]), -1))).loss

        @torch.no_grad()
        def sample():
            return net.decoder(torch.randn(CASES["vae"].sample_n, lat)).reconstruction
        del nn
        return make_step(net, loss, adamw(net.parameters())), sample, n_params(net), "pythae " + version("pythae")
    raise KeyError(name)


def run_case(name: str, rounds: int, reps: int, quick: bool, peer: bool = True) -> dict:
    """Everything measured for one case in this process (its thread count is already set)."""
    case, method, tcfg, batch, data = build(name, quick)
    step = trainer_step(method, tcfg)
    per_step = batch["x"].numel() if case.unit == "tokens" else len(batch["x"])
    # the diffusers comparison samples 20 evenly spaced DDPM steps, ancestral, as the peer does
    opts = {"sampler": "ddim", "steps": 20, "eta": 1.0} if case.peer == "diffusers" else {}
    gen = torch.Generator().manual_seed(0)
    ours_sample = lambda: draw(method, case.sample_n, gen, **opts)  # noqa: E731
    res = {"case": name, "method": case.method, "family": case.family, "threads": torch.get_num_threads(),
           "batch": len(batch["x"]), "unit": case.unit, "per_step": per_step,
           "params": sum(p.numel() for p in method.parameters()), "default_steps": tcfg.steps}
    if data is not None and case.unit == "tokens":
        res["seq_len"] = batch["x"].shape[1]
    mem = rss_rise(lambda: step(batch))
    flops = step_flops(lambda: step(batch))
    fns = {"ours_train": (lambda: step(batch), reps)}
    with torch.no_grad():
        method.eval()
        ours_sample()
    # sub-millisecond draws (VAE, flows) are timed over enough calls to fill ~50 ms, ours and the peer alike;
    # eval mode is set before a round's calls (not inside the timed call: the peer's call does not switch modes)
    ours_timed = torch.no_grad()(ours_sample)
    sample_reps = max(1, min(1000, int(0.05 / max(timed(lambda: _eval_call(method, ours_sample), 3), 1e-6))))
    fns["ours_sample"] = (ours_timed, sample_reps)
    if peer and case.peer:
        p_step, p_sample, p_params, p_ver = peer_builder(case.peer, method, tcfg, batch)
        res.update(peer=p_ver, peer_params=p_params, peer_mem_mib=rss_rise(lambda: p_step(batch)),
                   peer_step_flops=step_flops(lambda: p_step(batch)))
        fns["peer_train"] = (lambda: p_step(batch), reps)
        if p_sample is not None:
            p_sample()
            fns["peer_sample"] = (torch.no_grad()(p_sample), sample_reps)  # wrapped as ours is
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):  # interleaved: ours, peer, ours, peer, ...
        for k, (fn, r) in fns.items():
            if k == "ours_sample":
                method.eval()  # the training step of this round left it in train mode
            times[k].append(timed(fn, r))
    med = {k: statistics.median(v) for k, v in times.items()}
    res.update(mem_mib=mem, step_flops=flops, train_steps_per_s=1 / med["ours_train"],
               train_units_per_s=per_step / med["ours_train"], sample_n=case.sample_n,
               samples_per_s=case.sample_n / med["ours_sample"],
               default_run_minutes_extrapolated=tcfg.steps * med["ours_train"] / 60)
    if case.unit == "tokens":
        res["sample_tokens_per_s"] = case.sample_n * res.get("seq_len", method.seq_len) / med["ours_sample"]
    if "peer_train" in med:
        res["peer_train_steps_per_s"] = 1 / med["peer_train"]
        res["train_ratio"] = med["peer_train"] / med["ours_train"]
    if "peer_sample" in med:
        res["peer_samples_per_s"] = case.sample_n / med["peer_sample"]
        res["sample_ratio"] = med["peer_sample"] / med["ours_sample"]
    res["rounds"], res["sample_calls_per_round"] = rounds, sample_reps
    return res


def _eval_call(method, fn):
    method.eval()
    with torch.no_grad():
        return fn()


def adamw_variants(rounds: int, quick: bool) -> dict:
    """The optimizer step alone on two default models' parameters: for-loop, foreach and fused AdamW, and
    how far foreach/fused weights drift from the for-loop's after 20 steps on the same gradients."""
    out = {}
    for name in ("ddpm", "ar"):
        case, method, tcfg, batch, _ = build(name, quick)
        params = [p for p in method.parameters()]
        grads = [torch.randn_like(p) * 1e-2 for p in params]
        variants = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
        copies, opts = {}, {}
        for v, kw in variants.items():
            copies[v] = [p.detach().clone().requires_grad_() for p in params]
            for c, g in zip(copies[v], grads):
                c.grad = g.clone()
            opts[v] = torch.optim.AdamW(copies[v], lr=tcfg.lr, weight_decay=1e-2, **kw)
        drift = {}
        for _ in range(20):
            for v in variants:
                opts[v].step()
        for v in ("foreach", "fused"):
            drift[v] = max(float((a - b).detach().abs().max()) for a, b in zip(copies[v], copies["for-loop"]))
        t = {v: [] for v in variants}
        for _ in range(rounds):
            for v in variants:
                t[v].append(timed(opts[v].step, 10))
        med = {v: statistics.median(x) for v, x in t.items()}
        out[name] = {"tensors": len(params), "params": sum(p.numel() for p in params),
                     "ms_per_step": {v: 1e3 * m for v, m in med.items()},
                     "speedup_over_for_loop": {v: med["for-loop"] / m for v, m in med.items()},
                     "max_abs_diff_after_20_steps_vs_for_loop": drift}
    return out


# ---------------------------------------------------------------------------------------------- driver
def child(args) -> None:
    torch.set_num_threads(args.threads[0])
    if args.child == "peak":
        res = peak(args.quick)
    elif args.child == "adamw":
        res = adamw_variants(args.rounds, args.quick)
    else:
        res = run_case(args.child, args.rounds, args.reps, args.quick, peer=not args.no_peers)
    print("RESULT " + json.dumps(res))


def spawn(what: str, threads: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--threads", str(threads), "--rounds", str(args.rounds),
           "--reps", str(args.reps)] + (["--quick"] if args.quick else []) + (["--no-peers"] if args.no_peers else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {"case": what, "threads": threads, "error": (p.stderr.strip().splitlines() or ["no output"])[-1]}


def table(results: list[dict], peaks: dict[int, dict]) -> str:
    rows = ["| case | threads | batch | train steps/s | examples or tokens/s | samples/s (n) | peak mem MiB | "
            "GFLOP/step | FLOP util | peer | train x peer | sample x peer | default run min (extrap.) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['case']} | {r['threads']} | error: {r['error'][:80]} |" + " |" * 10)
            continue
        pk = peaks.get(r["threads"], {}).get("peak_gflops", float("nan"))
        flops = r["step_flops"]
        gflop = "n/a" if flops is None else f"{flops / 1e9:.3g}"
        util = "n/a" if flops is None else f"{flops * r['train_steps_per_s'] / 1e9 / pk:.0%}"
        unit = "tok" if r["unit"] == "tokens" else "ex"
        peer = (f"{r.get('peer', '-')} | {r['train_ratio']:.2f} | " + (f"{r['sample_ratio']:.2f}" if "sample_ratio" in r else "-")
                if "train_ratio" in r else "- | - | -")
        rows.append(f"| {r['case']} | {r['threads']} | {r['batch']} | {r['train_steps_per_s']:.2f} | "
                    f"{r['train_units_per_s']:.0f} {unit} | {r['samples_per_s']:.2f} ({r['sample_n']}) | "
                    f"{r['mem_mib']:.0f} | {gflop} | {util} | {peer}")
        rows[-1] += f" | {r['default_run_minutes_extrapolated']:.1f} ({r['default_steps']} steps) |"
    return "\n".join(rows)


def print_markdown(path: Path) -> None:
    """Tables from a --json file, or from the log lines of a run that did not finish."""
    text = path.read_text()
    try:
        d = json.loads(text)
        peaks, results, adamw = {int(k): v for k, v in d["peaks"].items()}, d["cases"], d.get("adamw", {})
    except ValueError:
        peaks, results, adamw = {}, [], {}
        for line in text.splitlines():
            if line.startswith("peak at "):
                t = int(line.split()[2])
                peaks[t] = {"peak_gflops": float(line.split(":")[1].split()[0])}
            elif line.startswith("{"):
                results.append(json.loads(line))
    for t, p in sorted(peaks.items()):
        print(f"peak at {t} thread(s): {p['peak_gflops']:.1f} GFLOP/s")
    print(table(results, peaks))
    if adamw:
        print("\n| model | tensors | for-loop ms | foreach ms | fused ms | fused speed-up | max abs diff fused / foreach |")
        print("|---|---|---|---|---|---|---|")
        for name, a in adamw.items():
            ms, dr = a["ms_per_step"], a["max_abs_diff_after_20_steps_vs_for_loop"]
            print(f"| {name} | {a['tensors']} | {ms['for-loop']:.1f} | {ms['foreach']:.1f} | {ms['fused']:.1f} | "
                  f"{a['speedup_over_for_loop']['fused']:.1f}x | {dr['fused']:.1g} / {dr['foreach']:.1g} |")


def profile_case(name: str, reps: int, quick: bool, top: int = 8) -> None:
    """The operators that take a case's training step, by self CPU time (the threads the process has)."""
    from torch.profiler import profile

    _, method, tcfg, batch, _ = build(name, quick)
    step = trainer_step(method, tcfg)
    step(batch)  # warm-up
    with profile() as prof:
        for _ in range(reps):
            step(batch)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    print(f"\n{name}: {total / reps / 1e3:.0f} ms self CPU per step ({torch.get_num_threads()} threads), top operators:")
    print("| operator | share of the step |\n|---|---|")
    for e in ops[:top]:
        print(f"| {e.key} | {100 * e.self_cpu_time_total / total:.1f}% |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES), help=f"subset of: {' '.join(CASES)}")
    ap.add_argument("--threads", type=int, nargs="*", default=[2], help="thread counts to run every case at")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (ours, peer) per case")
    ap.add_argument("--reps", type=int, default=3, help="training steps per round")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds of 1 step: a smoke test")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-adamw", action="store_true", help="skip the AdamW for-loop/foreach/fused comparison")
    ap.add_argument("--json", default="", help="write every figure here")
    ap.add_argument("--markdown", default="", help="print the tables of a --json file (or of this script's log) and exit")
    ap.add_argument("--profile", nargs="*", default=[], metavar="CASE",
                    help="instead of timing: where each case's training step spends its time (torch.profiler, "
                         "self CPU time per operator as a share of the step), then exit")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.markdown:
        return print_markdown(Path(args.markdown))
    if args.quick:
        args.rounds, args.reps = min(args.rounds, 2), 1
    if args.profile:
        for name in args.profile:
            profile_case(name, args.reps, args.quick)
        return
    if args.child:
        return child(args)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {unknown}; choose from {' '.join(CASES)}")
    peaks = {t: spawn("peak", t, args) for t in args.threads}
    for t, p in peaks.items():
        print(f"peak at {t} thread(s): {p.get('peak_gflops', float('nan')):.1f} GFLOP/s "
              f"(gemm {json.dumps({k: round(v, 1) for k, v in p.get('gemm_gflops', {}).items()})}, "
              f"conv {json.dumps({k: round(v, 1) for k, v in p.get('conv_gflops', {}).items()})})", flush=True)
    results = []
    for name in args.cases:
        for t in args.threads:
            r = spawn(name, t, args)
            results.append(r)
            print(json.dumps(r), flush=True)
    adamw = {} if args.no_adamw else spawn("adamw", args.threads[0], args)
    print(table(results, peaks))
    if adamw:
        print("AdamW step:", json.dumps(adamw, indent=1))
    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
            "load_avg": os.getloadavg()}
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "peaks": peaks, "cases": results, "adamw": adamw},
                                              indent=1))


if __name__ == "__main__":
    main()
