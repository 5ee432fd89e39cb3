"""With the exact denoiser / exact ratios of an enumerated distribution (3 tokens, length 3, 27 sequences),
each sampler must reproduce the data: total variation below BOUND over N samples. For reference, N exact
draws from the data itself are at TV ~0.02; the same samplers with 3 steps are at 0.1-0.15, and LLaDA's
low-confidence remasking (a biased, greedy-ish order) at ~0.4.
"""

import pytest
import torch

from deepatlas.discrete.exact import ExactDistribution
from deepatlas.discrete.processes import Absorbing, Uniform
from deepatlas.discrete.remasking import llada_generate
from deepatlas.discrete.samplers import ancestral, euler, tweedie

V, L, N, STEPS, BOUND = 3, 3, 8000, 40, 0.05


@pytest.fixture(scope="module")
def data():
    return ExactDistribution.random(V, L, seed=0)


def test_ancestral(data):
    torch.manual_seed(0)
    x = torch.full((N, L), V)
    s = ancestral(lambda z: data.logp_x0(z, V), V, x, STEPS)
    assert data.tv(s) < BOUND


def test_random_remasking_one_token_per_step_is_exact(data):
    torch.manual_seed(0)
    s = llada_generate(lambda z: data.logp_x0(z, V), torch.zeros(N, 0, dtype=torch.long), L, L, V,
                       remasking="random", temperature=1.0)
    assert data.tv(s) < 0.035  # exact sampler: only sampling noise


def test_low_confidence_remasking_is_not_a_sampler_of_the_data(data):
    torch.manual_seed(0)
    s = llada_generate(lambda z: data.logp_x0(z, V), torch.zeros(N, 0, dtype=torch.long), L, L, V,
                       remasking="low_confidence", temperature=1.0)
    assert data.tv(s) > 0.2  # documents that it trades diversity for confidence


@pytest.mark.parametrize("proc", [Absorbing(V), Uniform(V)], ids=lambda p: p.name)
@pytest.mark.parametrize("sampler", [euler, tweedie], ids=["euler", "tweedie"])
def test_sedd_samplers(data, proc, sampler):
    torch.manual_seed(0)
    s = sampler(lambda z, t: data.log_score(z, t, proc), proc, proc.prior_sample((N, L)), STEPS)
    assert data.tv(s) < BOUND


def test_few_steps_are_measurably_worse(data):
    """The bound above can fail: 2 ancestral steps reveal tokens jointly and miss the correlations."""
    torch.manual_seed(0)
    s = ancestral(lambda z: data.logp_x0(z, V), V, torch.full((N, L), V), 2)
    assert data.tv(s) > BOUND


def test_semi_autoregressive_blocks_fill_left_to_right():
    seen = []

    def fn(z):
        seen.append(z.clone())
        return torch.randn(*z.shape, V)

    torch.manual_seed(0)
    out = llada_generate(fn, torch.zeros(2, 1, dtype=torch.long), 8, 8, V, block_length=4)
    assert (out != V).all()
    for z in seen:  # while the first block still has masks, the second is untouched
        if (z[:, 1:5] == V).any():
            assert (z[:, 5:] == V).all()
    assert len(seen) == 8  # one call per step, no guidance


def test_classifier_free_guidance():
    torch.manual_seed(0)
    table = torch.randn(V + 1, V)

    def fn(z):  # logits at each position depend on the first token (the prompt) only
        return table[z[:, :1]].expand(-1, z.shape[1], -1) + 0.1 * torch.arange(z.shape[1])[None, :, None]

    prompt = torch.tensor([[0], [1]])
    plain = llada_generate(fn, prompt, 4, 4, V)
    same = llada_generate(lambda z: fn(torch.zeros_like(z)), prompt, 4, 4, V, cfg_scale=3.0)
    assert torch.equal(same, llada_generate(lambda z: fn(torch.zeros_like(z)), prompt, 4, 4, V))  # u == c: no effect
    guided = llada_generate(fn, prompt, 4, 4, V, cfg_scale=3.0)
    c, u = table[prompt[:, 0]], table[V]
    expect = (u + 4 * (c - u)).argmax(-1)
    assert (guided[:, 1:] == expect[:, None]).all() and plain.shape == guided.shape


@pytest.mark.parametrize("sampler", [euler, tweedie], ids=["euler", "tweedie"])
def test_sedd_absorbing_ends_without_masks_for_any_score(sampler):
    proc = Absorbing(V)
    torch.manual_seed(0)
    s = sampler(lambda z, t: torch.randn(*z.shape, proc.n_states) - 3.0, proc, proc.prior_sample((200, L)), 4)
    assert (s != proc.mask_id).all()
