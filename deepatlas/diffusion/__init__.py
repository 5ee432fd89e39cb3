"""Continuous diffusion in the EDM view: preconditioned denoisers, sigma grids, samplers, methods."""

from deepatlas.diffusion import method, samplers  # noqa: F401  (registration)
