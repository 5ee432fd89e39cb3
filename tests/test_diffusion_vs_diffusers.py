"""One DDPM and one DDIM step against diffusers' schedulers on the same inputs (optional peer)."""

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from deepatlas.diffusion import samplers, sigma_grids, vp_schedule  # noqa: E402


def _setup():
    b = vp_schedule.betas("linear")
    return vp_schedule.alpha_bar(b).float(), vp_schedule.sigmas(b).float()


def _step_ours(x_t, eps, t, t_prev, ab, table, eta, seed):
    """Our ancestral step, run in x_hat = x / sqrt(ab) and mapped back to DDPM's x."""
    s, s_next = table[t], (table[t_prev] if t_prev >= 0 else torch.tensor(0.0))
    x_hat = x_t / ab[t].sqrt()
    D = x_hat - s * eps  # the denoiser that predicts this eps
    out = samplers.ancestral(lambda x, sigma: D, x_hat, torch.stack([s, s_next]), eta=eta,
                             generator=torch.Generator().manual_seed(seed))
    return out * (ab[t_prev].sqrt() if t_prev >= 0 else 1.0)


def test_ddpm_step_matches_diffusers():
    ab, table = _setup()
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                    beta_schedule="linear", clip_sample=False, variance_type="fixed_small")
    g = torch.Generator().manual_seed(0)
    x_t, eps = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    for t in (999, 487, 1):
        ref = sched.step(eps, t, x_t, generator=torch.Generator().manual_seed(7)).prev_sample
        ours = _step_ours(x_t, eps, t, t - 1, ab, table, eta=1.0, seed=7)
        assert torch.allclose(ours, ref, atol=2e-5, rtol=1e-4), t


def test_ddim_step_matches_diffusers():
    ab, table = _setup()
    sched = diffusers.DDIMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02,
                                    beta_schedule="linear", clip_sample=False, set_alpha_to_one=True)
    sched.set_timesteps(20)
    ts = sched.timesteps.tolist()
    assert sigma_grids.ddim(20, table.double())[:-1].float().allclose(table[ts])  # the same grid
    g = torch.Generator().manual_seed(1)
    x_t, eps = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    for i, t in enumerate(ts):
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        ref = sched.step(eps, t, x_t, eta=0.0).prev_sample
        ours = _step_ours(x_t, eps, t, t_prev, ab, table, eta=0.0, seed=0)
        assert torch.allclose(ours, ref, atol=2e-5, rtol=1e-4), t
