"""Continuous diffusion in the EDM view: preconditioned denoisers, sigma grids, samplers, methods."""
