"""Every continuous diffusion model as one denoiser D(x; sigma) (Karras et al. 2022, "EDM", Table 1).

Data are corrupted as x = s (x0 + sigma eps); samplers work on x_hat = x / s = x0 + sigma eps, so a
formulation is (i) how sigma is drawn in training, (ii) the preconditioning that turns the network F
into a denoiser
    D(x_hat; sigma) = c_skip(sigma) x_hat + c_out(sigma) F(c_in(sigma) x_hat; c_noise(sigma)),
and (iii) the loss weight lambda(sigma) in  L = E lambda(sigma) |D(x0 + sigma eps; sigma) - x0|^2.
Written in terms of F, L = E lambda c_out^2 |F - F_target|^2 with F_target = (x0 - c_skip x_hat) / c_out,
and each formulation below has lambda c_out^2 = 1: it regresses its own natural target with unit weight.

- VP (DDPM, eps-prediction): c_skip = 1, c_out = -sigma, c_in = 1/sqrt(1+sigma^2), F_target = eps,
  sigma from the discrete schedule at t ~ U{0..T-1}, c_noise = t.
- VE (score matching, NCSN): c_skip = 1, c_out = sigma, c_in = 1, F_target = -eps (so F = sigma * score),
  log sigma ~ U(log sigma_min, log sigma_max), c_noise = log(sigma/2).
- Flow matching / rectified flow: x_t = (1-t) x0 + t eps, so s = 1-t, sigma = t/(1-t);
  c_skip = c_in = 1/(1+sigma), c_out = -sigma/(1+sigma), F_target = eps - x0 (the velocity), t ~ U(0,1).
- EDM: c_skip = sd^2/(sigma^2+sd^2), c_out = sigma sd/sqrt(sigma^2+sd^2), c_in = 1/sqrt(sigma^2+sd^2),
  c_noise = log(sigma)/4, ln sigma ~ N(P_mean, P_std^2).

c_noise values are multiplied so that each spans roughly 0..1000 for the shared sinusoidal embedding.
"""

from __future__ import annotations

import math

import torch

from deepatlas.diffusion import vp_schedule


class Precond:
    name = ""
    sigma_min = 0.002
    sigma_max = 80.0

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = sigma_data

    def c_skip(self, sigma):
        return torch.ones_like(sigma)

    def c_out(self, sigma):
        raise NotImplementedError

    def c_in(self, sigma):
        raise NotImplementedError

    def c_noise(self, sigma):
        raise NotImplementedError

    def sample_sigma(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def loss_weight(self, sigma):
        """lambda(sigma) of the D-space loss; chosen so that lambda * c_out^2 = 1."""
        return 1.0 / self.c_out(sigma) ** 2

    def scale(self, sigma):
        """s(sigma): the factor between the model's own variable x and x_hat (x = s * x_hat)."""
        return torch.ones_like(sigma)


class VPPrecond(Precond):
    name = "vp"

    def __init__(self, sigma_data: float = 0.5, beta_schedule: str = "linear", T: int = 1000):
        super().__init__(sigma_data)
        self.betas = vp_schedule.betas(beta_schedule, T)
        self.sigmas = vp_schedule.sigmas(self.betas).float()  # (T,) increasing
        self.sigma_min, self.sigma_max = float(self.sigmas[0]), float(self.sigmas[-1])

    def c_out(self, sigma):
        return -sigma

    def c_in(self, sigma):
        return 1 / (1 + sigma ** 2).sqrt()

    def c_noise(self, sigma):
        return vp_schedule.sigma_to_t(sigma, self.sigmas)

    def sample_sigma(self, n):
        return self.sigmas[torch.randint(0, len(self.sigmas), (n,))]

    def scale(self, sigma):
        return 1 / (1 + sigma ** 2).sqrt()


class VEPrecond(Precond):
    name = "ve"
    sigma_min, sigma_max = 0.02, 100.0

    def c_out(self, sigma):
        return sigma

    def c_in(self, sigma):
        return torch.ones_like(sigma)

    def c_noise(self, sigma):
        return 250 * (0.5 * sigma).log()

    def sample_sigma(self, n):
        u = torch.rand(n)
        return (math.log(self.sigma_min) + u * (math.log(self.sigma_max) - math.log(self.sigma_min))).exp()


class FlowPrecond(Precond):
    name = "flow"
    sigma_min, sigma_max = 1e-3, 999.0  # t in [1e-3 / (1 + 1e-3), 0.999]

    def c_skip(self, sigma):
        return 1 / (1 + sigma)

    def c_out(self, sigma):
        return -sigma / (1 + sigma)

    def c_in(self, sigma):
        return 1 / (1 + sigma)

    def c_noise(self, sigma):
        return 1000 * sigma / (1 + sigma)  # 1000 t

    def sample_sigma(self, n):
        t = torch.rand(n).clamp(1e-5, 1 - 1e-3)
        return t / (1 - t)

    def scale(self, sigma):
        return 1 / (1 + sigma)  # s = 1 - t


class EDMPrecond(Precond):
    name = "edm"

    def __init__(self, sigma_data: float = 0.5, p_mean: float = -1.2, p_std: float = 1.2):
        super().__init__(sigma_data)
        self.p_mean, self.p_std = p_mean, p_std

    def c_skip(self, sigma):
        return self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)

    def c_out(self, sigma):
        return sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_in(self, sigma):
        return 1 / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_noise(self, sigma):
        return 250 * sigma.log()  # 1000 * log(sigma) / 4

    def sample_sigma(self, n):
        return (self.p_mean + self.p_std * torch.randn(n)).exp()


PRECONDS = {"vp": VPPrecond, "ve": VEPrecond, "flow": FlowPrecond, "edm": EDMPrecond}
