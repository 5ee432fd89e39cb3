"""Classical generative models: GAN (minimax, non-saturating, WGAN-GP; DCGAN nets), VAE (ELBO and
IWAE), normalizing flows (planar, RealNVP, Glow, MAF) and autoregressive density models on binary
vectors (FVSBN, NADE, MADE)."""

from deepatlas.generative import gan, vae  # noqa: F401
from deepatlas.generative.autoregressive import method as _autoregressive  # noqa: F401
from deepatlas.generative.flows import method as _flows  # noqa: F401
