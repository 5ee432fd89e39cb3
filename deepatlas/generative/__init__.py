"""Classical generative models: GAN (minimax, non-saturating, WGAN-GP; DCGAN nets), VAE (ELBO and
IWAE), normalizing flows (planar, RealNVP, Glow, MAF) and autoregressive density models on binary
vectors (FVSBN, NADE, MADE)."""
