"""Benchmarks of the classical generative models (issue 4). Each part trains with the shared trainer for
a fixed number of steps on one CPU thread, then evaluates; it prints one JSON line per model with the
measured CPU seconds, steps/s and the metric. Results are copied into bench/RESULTS.md by hand.

    OMP_NUM_THREADS=1 python bench/generative.py --part ar|vae|flows|flows-moons|gan|fid|peers-flows|peers-maf|peers-vae

Data: binarised Fashion-MNIST (fixed Bernoulli draw: train seed 0, test seed 1), grey Fashion-MNIST,
toy2d. Budgets are small on purpose (the whole suite is ~25 CPU-minutes): these are not converged numbers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import tempfile
import time

import torch

from deepatlas.data.base import DataConfig, load_dataset
from deepatlas.train.config import TrainConfig
from deepatlas.train.trainer import fit


def train(method, data, steps, batch, lr, **kw):
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=lr, warmup=kw.pop("warmup", 50), ema_decay=kw.pop("ema", 0.0),
                      ckpt_every=10**9, log_every=max(steps // 5, 1), threads=1, **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as d:
        fit(method, data, cfg, d, progress=False)
    cpu = time.process_time() - c0
    return {"steps": steps, "batch": batch, "cpu_s": round(cpu, 1), "wall_s": round(time.perf_counter() - t0, 1),
            "steps_per_cpu_s": round(steps / cpu, 2)}


def report(name, **kw):
    print(json.dumps({"model": name, **kw}), flush=True)


def part_ar(args):
    from deepatlas.generative.autoregressive.autoregressive_method import FVSBNMethod, MADEMethod, NADEMethod

    data = load_dataset(DataConfig(name="fashion-mnist", binarize=True))
    plans = [("fvsbn", FVSBNMethod, FVSBNMethod.Config(), 1500, 3e-3),
             ("nade", NADEMethod, NADEMethod.Config(hidden=256), 500, 3e-3),
             ("made", MADEMethod, MADEMethod.Config(hidden=500), 1500, 1e-3),
             ("made, 8 orders + connectivities", MADEMethod,
              MADEMethod.Config(hidden=500, num_masks=8, order_agnostic=True), 1500, 1e-3)]
    for name, cls, cfg, steps, lr in plans:
        if args.ar_models and name.split(",")[0] not in args.ar_models:
            continue
        torch.manual_seed(0)
        m = cls(cfg, data.info)
        t = train(m, data, int(steps * args.scale), 100, lr)
        r = m.evaluate(data, args.n_test)
        report(name, **t, test_examples=r["n"], nll_nats=round(r["nll_nats"], 2))
        if getattr(cfg, "num_masks", 1) > 1:  # the first mask set alone, without the ensemble
            m.train()
            m.net.set_mask(0)
            with torch.no_grad():
                x = data.test.get(torch.arange(args.n_test))["x"]
                single = -torch.cat([m.log_prob(xb) for xb in x.split(500)]).mean().item()
            report(name + " (mask set 0 alone)", test_examples=len(x), nll_nats=round(single, 2))


def part_floor(args):
    """The binarisation-noise floor: E_x[-log p(x_bin)] >= H(x_bin | grey image) = sum of per-pixel Bernoulli
    entropies H(p_ij), p_ij = grey intensity. No model of the binarised test images can average below it."""
    data = load_dataset(DataConfig(name="fashion-mnist"))
    p = ((data.test["x"].double() + 1) / 2).clamp(0, 1)
    h = -(torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)).flatten(1).sum(1)
    report("binarisation floor", test_examples=len(h), nats_all=round(h.mean().item(), 2),
           nats_first_2000=round(h[:2000].mean().item(), 2), nats_first_200=round(h[:200].mean().item(), 2))


def part_vae(args):
    from deepatlas.generative.vae import VAE

    data = load_dataset(DataConfig(name="fashion-mnist", binarize=True))
    for k in args.vae_ks:
        torch.manual_seed(0)
        m = VAE(VAE.Config(latent=32, hidden=256, k=k), data.info)
        t = train(m, data, int(1500 * args.scale), 100, 1e-3)
        m.eval()
        torch.manual_seed(0)
        c0 = time.process_time()
        small = m.evaluate(data, args.n_test, k=1)  # ELBO on the large subset
        iw = m.evaluate(data, args.n_iwae, k=5000)
        report(f"vae (train k={k})", **t, elbo_test_examples=small["n"], nll_elbo_nats=round(small["nll_elbo_nats"], 2),
               iwae_test_examples=iw["n"], nll_elbo_nats_iwae_subset=round(iw["nll_elbo_nats"], 2),
               nll_iwae5000_nats=round(iw["nll_iwae5000_nats"], 2), eval_cpu_s=round(time.process_time() - c0, 1))


def part_flows(args):
    from deepatlas.generative.flows.flow_method import MAF, Glow, RealNVP

    data = load_dataset(DataConfig(name="fashion-mnist"))
    plans = [("realnvp", RealNVP, RealNVP.Config(steps=2, levels=2, hidden=32)),
             ("glow", Glow, Glow.Config(steps=2, levels=2, hidden=32)),
             ("maf", MAF, MAF.Config(steps=5, hidden=128))]  # 5 MADEs 784 -> 128 -> 128 -> 2x784 on the flat image
    for name, cls, cfg in plans:
        if args.flow_models and name not in args.flow_models:
            continue
        torch.manual_seed(0)
        m = cls(cfg, data.info)
        t = train(m, data, int(400 * args.scale), 64, 1e-3)
        torch.manual_seed(0)
        c0 = time.process_time()
        r = m.evaluate(data, args.n_test, fid=False)
        eval_cpu = time.process_time() - c0
        c0 = time.process_time()
        m.sample(64, torch.Generator().manual_seed(0))  # MAF: one MADE pass per dimension and layer
        report(name, **t, params=sum(p.numel() for p in m.parameters()), test_examples=r["n"],
               bits_per_dim=round(r["bits_per_dim"], 3), eval_cpu_s=round(eval_cpu, 1),
               sample_64_cpu_s=round(time.process_time() - c0, 1))


def part_gan(args):
    from deepatlas.generative.gan import GAN

    data = load_dataset(DataConfig(name="toy2d", variant="gaussians8"))
    for loss, ncrit in (("minimax", 1), ("non-saturating", 1), ("wgan-gp", 5)):
        if args.gan_losses and loss not in args.gan_losses:
            continue
        torch.manual_seed(0)
        m = GAN(GAN.Config(loss=loss, n_critic=ncrit), data.info)
        t = train(m, data, int(args.gan_steps * args.scale), 256, args.gan_lr, beta1=0.5, grad_clip=0.0, warmup=0)
        r = m.evaluate(data, 2500)
        report(f"gan {loss}", lr=args.gan_lr, **t, samples=2500, modes=r["modes"], high_quality=round(r["high_quality"], 3))


def _image_metrics(r):
    """FID and KID (deepatlas.eval.fid) beside their real-vs-real floors at the same n, and FID's ratio to its floor."""
    return dict(fid=round(r["fid"], 3), fid_real=round(r["fid_real"], 3), fid_over_floor=round(r["fid"] / r["fid_real"], 2),
                kid=round(r["kid"], 4), kid_real=round(r["kid_real"], 4), n=r["fid_n_samples"],
                n_reference=r["fid_n_reference"], feature_dim=r["feature_dim"],
                feature_classifier_test_acc=round(r["feature_classifier_test_acc"], 4))


def part_fid(args):
    """FID and KID (deepatlas.eval.fid, in-domain classifier features) of DCGAN, WGAN-GP and a Gaussian-decoder
    VAE, each beside the real-vs-real floor at the same n; by default as many samples as the test split holds
    (359 digits), like the diffusion benchmark."""
    from deepatlas.generative.gan import GAN
    from deepatlas.generative.pictures import fid_or_none
    from deepatlas.generative.vae import VAE

    data = load_dataset(DataConfig(name=args.fid_data))
    ns = [n or len(data.test) for n in args.n_fid]
    plans = [("dcgan non-saturating", GAN(GAN.Config(loss="non-saturating"), data.info), 2e-4, dict(beta1=0.5, grad_clip=0.0, warmup=0)),
             ("dcgan wgan-gp", GAN(GAN.Config(loss="wgan-gp", n_critic=5), data.info), 2e-4, dict(beta1=0.5, beta2=0.9, grad_clip=0.0, warmup=0)),
             ("dcgan wgan-gp, paper defaults", GAN(GAN.Config(loss="wgan-gp"), data.info), GAN.defaults["train"]["lr"],
              {k: GAN.defaults["train"][k] for k in ("beta1", "beta2", "grad_clip", "warmup")}),
             ("vae gaussian decoder", VAE(VAE.Config(decoder="gaussian", latent=16), data.info), 1e-3, {})]
    for name, m, lr, kw in plans:
        if args.fid_models and name not in args.fid_models:
            continue
        torch.manual_seed(0)
        t = train(m, data, int(args.fid_steps * args.scale), 64, lr, **kw)
        torch.manual_seed(0)
        x = m.sample(max(ns), torch.Generator().manual_seed(0))  # each n: the first n of one draw
        for n in ns:
            report(name, data=args.fid_data, lr=lr, **kw, **t, **_image_metrics(fid_or_none(x[:n], data)))


def part_fid_ref(args):
    """The floor alone: real training images (the seeded draw deepatlas.eval.fid uses) against the test split."""
    from deepatlas.eval.fid import reference

    data = load_dataset(DataConfig(name=args.fid_data))
    for n in args.n_fid:
        report("real training images", data=args.fid_data, **reference(data).floor(n or len(data.test)))


def need(module: str) -> None:
    """Peers are optional extras: say how to get a missing one instead of a traceback."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"this part compares against {module}, which is not installed: pip install {module} "
                         f"(or pip install -e .[peers])") from None


def plain_loop(loss_fn, params, data, steps, batch, lr, seed=0):
    """The same loop for ours and the peer: AdamW, fixed batch order, no clipping; returns CPU seconds."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    c0 = time.process_time()
    for step in range(steps):
        idx = torch.randint(len(data.train), (batch,), generator=g)
        torch.manual_seed(seed * 1000 + step)
        loss = loss_fn(data.train.get(idx)["x"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.process_time() - c0


def _moons():
    data = load_dataset(DataConfig(name="toy2d", variant="moons"))
    return data, data.test.get(torch.arange(len(data.test)))["x"]


def moons_row(model, loss_fn, log_prob, data, x_test, steps, batch=256, lr=1e-3):
    """Train `model` with plain_loop on two moons; returns the report fields and the raw (cpu s, test NLL)."""
    cpu = plain_loop(loss_fn, list(model.parameters()), data, steps, batch, lr)
    with torch.no_grad():
        nll = -log_prob(x_test).mean().item()
    row = dict(steps=steps, batch=batch, params=sum(p.numel() for p in model.parameters()), cpu_s=round(cpu, 1),
               steps_per_cpu_s=round(steps / cpu, 1), test_nll_nats=round(nll, 3))
    return row, cpu, nll


def ours_on_moons(cls, cfg, data, x_test, steps):
    torch.manual_seed(0)
    m = cls(cfg, data.info)
    return moons_row(m, lambda x: m.loss({"x": x})["loss"], m.log_prob, data, x_test, steps)


def moons_log_prob(x, n_angles=4096):
    """Exact log-density of deepatlas.data.toy2d.moons, up to a midpoint rule over the arc angle a ~ U(0, pi):
    p(x) = sum_k 1/2 (1/pi) int N(x; 1.5 (arc_k(a) - c), (1.5 * 0.05)^2 I) da. Its mean over test points
    estimates the data entropy, the floor of any model's expected test NLL."""
    a = (torch.arange(n_angles, dtype=torch.float64) + 0.5) * math.pi / n_angles
    arcs = torch.cat([torch.stack([torch.cos(a), torch.sin(a)], 1), torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], 1)])
    means, sigma = (arcs - torch.tensor([0.5, 0.25], dtype=torch.float64)) * 1.5, 1.5 * 0.05  # (2A, 2)
    out = []
    for xb in x.double().split(500):
        log_n = -torch.cdist(xb, means) ** 2 / (2 * sigma ** 2) - math.log(2 * math.pi * sigma ** 2)  # (B, 2A)
        out.append(torch.logsumexp(log_n, 1) - math.log(2 * n_angles))
    return torch.cat(out)


def part_flows_moons(args):
    """The three flow families on two moons, same loop, batches and budget: planar, MAF, RealNVP."""
    from deepatlas.generative.flows.flow_method import MAF, PlanarFlow, RealNVP

    data, x_test = _moons()
    report("data-generating density (numerical)", test_nll_nats=round(-moons_log_prob(x_test).mean().item(), 3))
    steps = int(2000 * args.scale)
    for name, cls, cfg in (("planar, 16 layers", PlanarFlow, PlanarFlow.Config(steps=16)),
                           ("planar, 32 layers", PlanarFlow, PlanarFlow.Config(steps=32)),
                           ("maf, 5 MADEs 64-64", MAF, MAF.Config(steps=5, hidden=64)),
                           ("realnvp, 8 couplings 64-64", RealNVP, RealNVP.Config(steps=8, hidden=64))):
        row, _, _ = ours_on_moons(cls, cfg, data, x_test, steps)
        report(name, **row)


def part_peers_flows(args):
    """RealNVP on two moons: ours vs normflows, same coupling count, MLP widths, optimizer, batches."""
    need("normflows")
    import normflows as nf

    from deepatlas.generative.flows.flow_method import RealNVP

    data, x_test = _moons()
    steps, K, H = int(2000 * args.scale), 8, 64
    row, cpu, nll = ours_on_moons(RealNVP, RealNVP.Config(steps=K, hidden=H), data, x_test, steps)
    report("realnvp (deepatlas)", **row)
    torch.manual_seed(0)
    flows = []
    for _ in range(K):  # normflows: split coupling on one half + swap, MLP 1 -> H -> H -> 2
        flows += [nf.flows.AffineCouplingBlock(nf.nets.MLP([1, H, H, 2], init_zeros=True)), nf.flows.Permute(2, mode="swap")]
    peer = nf.NormalizingFlow(nf.distributions.base.DiagGaussian(2, trainable=False), flows)
    row, cpu_p, nll_p = moons_row(peer, peer.forward_kld, peer.log_prob, data, x_test, steps)
    report("realnvp (normflows 1.7.3)", **row, speed_ratio_ours_over_peer=round(cpu_p / cpu, 2),
           nll_difference_ours_minus_peer=round(nll - nll_p, 3))


def part_peers_maf(args):
    """MAF on two moons: ours vs nflows' MaskedAffineAutoregressiveTransform stack with a ReversePermutation
    between layers (our layers alternate the order instead), same layer count, hidden width, loop, batches.
    nflows' non-residual MADE is masked-linear D -> H, then num_blocks x (masked-linear H -> H, ReLU), then
    the output layer: num_blocks=2 has our two ReLUs plus one more H x H layer; num_blocks=1 has exactly our
    weight shapes but one ReLU. Both are run. Residual blocks, batch norm and dropout are off."""
    need("nflows")
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.transforms import CompositeTransform, MaskedAffineAutoregressiveTransform, ReversePermutation

    from deepatlas.generative.flows.flow_method import MAF

    data, x_test = _moons()
    steps, K, H = int(2000 * args.scale), 5, 64
    row, cpu, nll = ours_on_moons(MAF, MAF.Config(steps=K, hidden=H), data, x_test, steps)
    report("maf (deepatlas)", **row)
    for blocks in (2, 1):
        torch.manual_seed(0)
        layers = []
        for k in range(K):
            layers += [ReversePermutation(2)] if k else []
            layers.append(MaskedAffineAutoregressiveTransform(2, H, num_blocks=blocks, use_residual_blocks=False,
                                                              use_batch_norm=False, dropout_probability=0.0))
        peer = Flow(CompositeTransform(layers), StandardNormal([2]))
        row, cpu_p, nll_p = moons_row(peer, lambda x: -peer.log_prob(x).mean(), peer.log_prob, data, x_test, steps)
        report(f"maf (nflows 0.14, num_blocks={blocks})", **row, speed_ratio_ours_over_peer=round(cpu_p / cpu, 2),
               nll_difference_ours_minus_peer=round(nll - nll_p, 3))


def part_peers_vae(args):
    """VAE on binarised Fashion-MNIST: ours vs pythae with the same MLP encoder/decoder, optimizer and batches;
    both evaluated with the same IWAE estimator (deepatlas.generative.iwae)."""
    need("pythae")
    from pythae.models import VAE as PVAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    from deepatlas.generative.iwae import elbo, iwae_bound
    from deepatlas.generative.densities import gaussian_log_prob
    from deepatlas.generative.vae import VAE
    from deepatlas.nn.mlp import mlp

    data = load_dataset(DataConfig(name="fashion-mnist", binarize=True))
    steps, batch, lr, L, H = int(1500 * args.scale), 100, 1e-3, 32, 256
    x_test = data.test.get(torch.arange(args.n_iwae))["x"]

    def bounds(model):
        torch.manual_seed(0)
        with torch.no_grad():
            e = torch.cat([elbo(model, xb) for xb in x_test.split(50)]).mean().item()
            iw = torch.cat([iwae_bound(model, xb, 5000, 500) for xb in x_test.split(50)]).mean().item()
        return -e, -iw

    torch.manual_seed(0)
    ours = VAE(VAE.Config(latent=L, hidden=H), data.info)
    cpu = plain_loop(lambda x: ours.loss({"x": x})["loss"], list(ours.parameters()), data, steps, batch, lr)
    ours.eval()
    e, iw = bounds(ours)
    report("vae (deepatlas)", steps=steps, batch=batch, cpu_s=round(cpu, 1), steps_per_cpu_s=round(steps / cpu, 1),
           test_examples=len(x_test), nll_elbo_nats=round(e, 2), nll_iwae5000_nats=round(iw, 2))

    class Enc(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = mlp(784, 2 * L, H, 2)

        def forward(self, x):
            mu, log_std = self.net(x.flatten(1)).chunk(2, -1)
            return ModelOutput(embedding=mu, log_covariance=2 * log_std)

    class Dec(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = mlp(L, 784, H, 2)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).view(len(z), 1, 28, 28))

    torch.manual_seed(0)
    peer = PVAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=L, reconstruction_loss="bce"), encoder=Enc(), decoder=Dec())
    peer.train()
    cpu_p = plain_loop(lambda x: peer({"data": x}).loss, list(peer.parameters()), data, steps, batch, lr)
    peer.eval()

    class Adapter:  # the peer's networks under our estimator
        def log_weights(self, x, k):
            x = x.flatten(1)
            out = peer.encoder(x)
            mu, log_std = out.embedding, 0.5 * out.log_covariance
            z = mu + torch.exp(log_std) * torch.randn(k, *mu.shape)
            logits = peer.decoder.net(z)
            log_px = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
            prior = (-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1)
            return log_px + prior - gaussian_log_prob(z, mu, log_std)

    e_p, iw_p = bounds(Adapter())
    report("vae (pythae 0.1.2)", steps=steps, batch=batch, cpu_s=round(cpu_p, 1), steps_per_cpu_s=round(steps / cpu_p, 1),
           test_examples=len(x_test), nll_elbo_nats=round(e_p, 2), nll_iwae5000_nats=round(iw_p, 2),
           speed_ratio_ours_over_peer=round(cpu_p / cpu, 2), iwae_difference_ours_minus_peer=round(iw - iw_p, 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--part", required=True, choices=("ar", "floor", "vae", "flows", "flows-moons", "gan", "fid", "fid-ref",
                                                   "peers-flows", "peers-maf", "peers-vae"))
    p.add_argument("--scale", type=float, default=1.0, help="multiply every step budget")
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--n-iwae", type=int, default=200)
    p.add_argument("--gan-steps", type=int, default=3000)
    p.add_argument("--gan-lr", type=float, default=1e-3)
    p.add_argument("--fid-models", nargs="*", default=[], help="only these rows of --part fid (default: all), e.g. 'vae gaussian decoder'")
    p.add_argument("--gan-losses", nargs="*", default=[], help="only these GAN losses (default: all three)")
    p.add_argument("--ar-models", nargs="*", default=[], help="only these of fvsbn, nade, made (default: all)")
    p.add_argument("--flow-models", nargs="*", default=[], help="only these of realnvp, glow, maf (default: all)")
    p.add_argument("--vae-ks", type=int, nargs="+", default=[1, 5], help="training bounds L_k of the vae part")
    p.add_argument("--fid-data", default="digits")
    p.add_argument("--fid-steps", type=int, default=1500)
    p.add_argument("--n-fid", type=int, nargs="+", default=[0], help="sample counts for FID/KID (0: the test-split size)")
    args = p.parse_args()
    torch.set_num_threads(1)
    globals()["part_" + args.part.replace("-", "_")](args)


if __name__ == "__main__":
    main()
