"""Block diffusion: block = length is masked diffusion, block = 1 is autoregressive, and KV-cached sampling
equals recomputing the prefix, token for token."""

import torch

from deepatlas.discrete.block_diffusion import bd3_logits, bd3_mask, bd3_sample
from deepatlas.discrete.masked_diffusion import mask_tokens, masked_nelbo
from deepatlas.discrete.samplers import ancestral
from deepatlas.nn.transformer import Transformer

N, L = 7, 12
MASK = N


def _net(seed=0):
    torch.manual_seed(seed)
    return Transformer(N + 1, N, d=32, n_layers=2, n_heads=2).eval()


def test_mask_structure():
    m = bd3_mask(4, 2).int()
    expect = torch.tensor([
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 1, 1]])
    assert torch.equal(m, expect)


def test_block_equal_to_length_is_masked_diffusion():
    net = _net()
    x0 = torch.randint(0, N, (3, L))
    xt = mask_tokens(x0, torch.full((3,), 0.5), MASK)
    assert torch.allclose(bd3_logits(net, xt, x0, L), net(xt), atol=1e-5)
    torch.manual_seed(1)
    a = bd3_sample(net, torch.zeros(4, 0, dtype=torch.long), L, L, 6, MASK)
    torch.manual_seed(1)
    b = ancestral(lambda z: net(z).log_softmax(-1), MASK, torch.full((4, L), MASK), 6)
    assert torch.equal(a, b)


def test_block_one_is_autoregressive():
    net = _net()
    x0 = torch.randint(0, N, (2, L))
    all_masked = torch.full_like(x0, MASK)
    logp = bd3_logits(net, all_masked, x0, 1).log_softmax(-1)
    # causal: position b depends on x0[< b] only
    x1 = x0.clone()
    x1[:, 6:] = (x1[:, 6:] + 1) % N
    logp1 = bd3_logits(net, all_masked, x1, 1).log_softmax(-1)
    assert torch.allclose(logp[:, :7], logp1[:, :7], atol=1e-5)
    assert not torch.allclose(logp[:, 7:], logp1[:, 7:], atol=1e-3)
    # the bound's expectation is exactly the AR NLL of these conditionals: E_t[(1/t) 1{masked}] = 1 per token
    ar_nll = -logp.gather(-1, x0[..., None])[..., 0].sum(-1)
    torch.manual_seed(0)
    n = 3000
    xb = x0.repeat(n, 1)
    t = torch.rand(len(xb), L).clamp(min=0.01)  # the clamp biases the estimate by -0.5%
    xt = mask_tokens(xb, t, MASK)
    with torch.no_grad():
        est = masked_nelbo(bd3_logits(net, xt, xb, 1).log_softmax(-1), xb, xt, t, MASK).view(n, 2)
    assert torch.allclose(est.mean(0), ar_nll, rtol=0.05), (est.mean(0), ar_nll)  # ~4.5 standard errors


def test_kv_cached_sampling_equals_recomputation():
    net = _net(3)
    prompt = torch.randint(0, N, (3, 5))  # not a whole number of blocks
    for block in (1, 4):
        torch.manual_seed(7)
        a = bd3_sample(net, prompt, 10, block, 3, MASK, use_cache=True)
        torch.manual_seed(7)
        b = bd3_sample(net, prompt, 10, block, 3, MASK, use_cache=False)
        assert torch.equal(a, b), block
        assert torch.equal(a[:, :5], prompt) and (a != MASK).all()


def test_count_estimator_per_block():
    from deepatlas.discrete.block_diffusion import block_count_mask

    torch.manual_seed(0)
    x0 = torch.randint(0, N, (4000, 10))
    xt, t = block_count_mask(x0, 4, MASK)  # blocks of 4, 4, 2
    masked = xt == MASK
    per_block = [masked[:, 0:4].sum(1), masked[:, 4:8].sum(1), masked[:, 8:10].sum(1)]
    assert all((c >= 1).all() for c in per_block) and per_block[2].max() == 2
    assert torch.allclose(t[:, 0] * 4, per_block[0].double().to(t.dtype))
    # E[(1/t) 1{masked}] = 1 per token: the same expectation as t ~ U(0, 1)
    assert torch.allclose((masked / t).mean(0), torch.ones(10, dtype=t.dtype), atol=0.06)
    xt1, t1 = block_count_mask(x0, 1, MASK)
    assert (xt1 == MASK).all() and (t1 == 1).all()  # block 1: every token predicted from its prefix, weight 1
