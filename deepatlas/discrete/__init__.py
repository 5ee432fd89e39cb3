"""Discrete diffusion: corruption processes, the MDLM ELBO, score entropy, samplers, block diffusion,
and the methods built on them (mdlm, llada, sedd-absorb, sedd-uniform, bd3lm)."""
