"""Discrete diffusion: corruption processes, the MDLM ELBO, score entropy, samplers, block diffusion,
and the methods built on them (mdlm, llada, sedd-absorb, sedd-uniform, bd3lm)."""

from deepatlas.discrete import bd3lm, mdlm, sedd  # noqa: F401  (registration)

from deepatlas.discrete import remasking, samplers  # noqa: E402
from deepatlas.registry import register_sampler  # noqa: E402

# names carry the family: `euler` etc. are taken by continuous diffusion; the CLI flags use the short
# names (--remasking low_confidence | random | ancestral, --sampler euler | tweedie)
register_sampler("mdlm-ancestral", "discrete", "MDLM ancestral: reveal masked tokens with prob (alpha_s-alpha_t)/(1-alpha_t)")(samplers.ancestral)
register_sampler("sedd-euler", "discrete", "SEDD Euler / tau-leaping with the reverse rates Q[y,x] s_y")(samplers.euler)
register_sampler("sedd-tweedie", "discrete", "SEDD Tweedie tau-leaping (exact per-token denoising step)")(samplers.tweedie)
register_sampler("llada-low-confidence", "discrete", "LLaDA: keep the most confident predictions, remask the rest")(remasking.llada_generate)
register_sampler("llada-random", "discrete", "LLaDA: keep random predictions (exact any-order sampling at 1 token/step)")(remasking.llada_generate)
