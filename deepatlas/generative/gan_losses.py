"""GAN objectives on discriminator logits / critic values (d_real = D(x), d_fake = D(G(z))).

Original minimax game (Goodfellow et al. 2014), with D(x) = sigmoid(d):
    max_D  E log D(x) + E log(1 - D(G(z)))      ->  D loss  softplus(-d_real) + softplus(d_fake)
    min_G  E log(1 - D(G(z)))                   ->  G loss  -softplus(d_fake)
For fixed G the best D is D*(x) = p_data(x) / (p_data(x) + p_g(x)).
Non-saturating generator loss: min_G -E log D(G(z)) = softplus(-d_fake); same fixed point, but strong
gradients when D rejects the fakes early in training.
WGAN-GP (Gulrajani et al. 2017): critic loss E d_fake - E d_real + lambda E (||grad D(x_hat)|| - 1)^2 on
points x_hat on straight lines between real and fake samples; generator loss -E d_fake.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("minimax", "non-saturating", "wgan-gp")


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "wgan-gp":
        return d_fake.mean() - d_real.mean()
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def generator_loss(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    if kind == "minimax":
        return -F.softplus(d_fake).mean()  # = E log(1 - D(G(z)))
    if kind == "non-saturating":
        return F.softplus(-d_fake).mean()  # = -E log D(G(z))
    if kind == "wgan-gp":
        return -d_fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; choose one of {LOSSES}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E (||grad_x critic(x_hat)||_2 - 1)^2 with x_hat = eps x_real + (1 - eps) x_fake, eps ~ U(0, 1)."""
    eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
