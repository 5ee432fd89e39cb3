"""Discrete diffusion: corruption processes, the MDLM ELBO, score entropy, samplers, block diffusion,
and the methods built on them (mdlm, llada, sedd-absorb, sedd-uniform, bd3lm)."""

from deepatlas.discrete import bd3lm, mdlm, sedd  # noqa: F401  (registration)

from functools import partial  # noqa: E402

from deepatlas.discrete import remasking, samplers  # noqa: E402
from deepatlas.registry import register_sampler  # noqa: E402

# names carry the family (`euler` is taken by continuous diffusion); each is the name `--sampler` takes
# and the key the methods look the function up by
register_sampler("mdlm-ancestral", "discrete", "MDLM ancestral: reveal masked tokens with prob (alpha_s-alpha_t)/(1-alpha_t)")(samplers.ancestral)
register_sampler("sedd-euler", "discrete", "SEDD Euler / tau-leaping with the reverse rates Q[y,x] s_y")(samplers.euler)
register_sampler("sedd-tweedie", "discrete", "SEDD Tweedie tau-leaping (exact per-token denoising step)")(samplers.tweedie)
register_sampler("llada-low-confidence", "discrete", "LLaDA: keep the most confident predictions, remask the rest")(partial(remasking.llada_generate, remasking="low_confidence"))
register_sampler("llada-random", "discrete", "LLaDA: keep random predictions (exact any-order sampling at 1 token/step)")(partial(remasking.llada_generate, remasking="random"))
