"""AR Transformer LM and n-gram KN: KV cache equals recomputation, sampling filters, causality, KN by hand."""

import math

import pytest
import torch

from deepatlas.language.kneser_ney import KneserNey
from deepatlas.language.sampling import filter_logits
from deepatlas.nn.transformer import Transformer, rope, rope_angles


def test_causal_attention_ignores_the_future():
    torch.manual_seed(0)
    net = Transformer(11, 11, d=32, n_layers=2, n_heads=2)
    x = torch.randint(0, 11, (2, 9))
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 3) % 11
    assert torch.allclose(net(x, mask="causal")[:, :5], net(y, mask="causal")[:, :5], atol=1e-6)
    assert not torch.allclose(net(x)[:, :5], net(y)[:, :5], atol=1e-4)  # bidirectional sees it


def test_rope_is_the_rotation_of_half_pairs_and_depends_on_offsets_only():
    """Oracle: each pair (x_k, x_{k+d/2}) turned by pos * 10000^(-2k/d), written out by hand; and
    q·k after rotation is unchanged when both positions shift by the same amount."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 8)  # (B, H, T, d)
    pos = torch.arange(7)
    ang = pos[:, None].float() * 10000.0 ** (-torch.arange(0, 8, 2).float() / 8)  # (T, d/2)
    x1, x2 = x[..., :4], x[..., 4:]
    by_hand = torch.cat([x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()], -1)
    assert torch.equal(rope(x, rope_angles(pos, 8, x.dtype)), by_hand)  # the same numbers, not just close
    per_row = rope(x, rope_angles(pos.expand(2, 7), 8, x.dtype))  # positions given per sequence
    assert torch.equal(per_row, by_hand)
    q, k = torch.randn(8), torch.randn(8)
    def dot(i, j):
        qi = rope(q.view(1, 8), rope_angles(torch.tensor([i]), 8, q.dtype))
        kj = rope(k.view(1, 8), rope_angles(torch.tensor([j]), 8, k.dtype))
        return (qi * kj).sum()
    assert torch.allclose(dot(5, 2), dot(13, 10), atol=1e-5)
    assert not torch.allclose(dot(5, 2), dot(5, 3), atol=1e-3)


def test_kv_cache_logits_equal_full_pass():
    torch.manual_seed(0)
    net = Transformer(11, 11, d=32, n_layers=2, n_heads=2)
    x = torch.randint(0, 11, (2, 10))
    full = net(x, mask="causal")
    cache = net.new_cache()
    parts = [net(x[:, :4], mask="causal", cache=cache, store=True)]
    parts += [net(x[:, i:i + 1], mask="causal", cache=cache, store=True) for i in range(4, 10)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


@pytest.mark.parametrize("opts", [dict(temperature=1.0), dict(temperature=0.7, top_k=5), dict(temperature=1.0, top_p=0.8),
                                  dict(temperature=0.0)])
def test_ar_generation_cached_equals_uncached(opts, tiny_text):
    from deepatlas.language.ar import AutoregressiveLM

    torch.manual_seed(0)
    m = AutoregressiveLM(AutoregressiveLM.Config(d_model=32, n_layers=2, n_heads=2), tiny_text.info).eval()
    prompt = tiny_text.test["x"][:3, :6]
    torch.manual_seed(1)
    a = m.complete(prompt, m.SampleConfig(length=20, use_cache=True, **opts))
    torch.manual_seed(1)
    b = m.complete(prompt, m.SampleConfig(length=20, use_cache=False, **opts))
    assert torch.equal(a, b)


def test_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [[True, True, True, False]]


def test_kneser_ney_by_hand():
    # corpus "0 1 0 1", bigrams, D = 0.75, vocabulary {0, 1, 2}; worked out in docs/ngram.md
    kn = KneserNey([[0, 1, 0, 1]], order=2, vocab=3, discount=0.75)
    p1 = [1.75 / 3, 0.75 / 3, 0.5 / 3]  # continuation unigram interpolated with uniform
    assert kn.prob(1, (0,)) == pytest.approx(1.25 / 2 + 0.375 * p1[1])
    assert kn.prob(0, (0,)) == pytest.approx(0.375 * p1[0])
    assert kn.prob(2, (0,)) == pytest.approx(0.375 * p1[2])
    assert [kn.prob(w, (2,)) for w in range(3)] == pytest.approx(p1)  # unseen history: the lower order


def test_kneser_ney_is_normalised():
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 6, (20, 30), generator=g).tolist()
    kn = KneserNey(seqs, order=4, vocab=6)
    for h in [(), (1,), (6, 6, 6), tuple(seqs[0][:3]), (5, 5, 5), (0, 1, 2)]:
        assert float(kn.dist(h).sum()) == pytest.approx(1.0, abs=1e-12)
        assert [kn.prob(w, h) for w in range(6)] == pytest.approx(kn.dist(h).tolist())
    assert math.isclose(sum(kn.prob(w, (1, 2, 3)) for w in range(6)), 1.0)


@pytest.mark.parametrize("order", [2, 3])
def test_kneser_ney_matches_nltk(order):
    """nltk's KneserNeyInterpolated has an undiscounted continuation unigram at the bottom; ours with
    unigram_discount=0 is the same model. nltk is fed exactly our padded n-grams (and their suffixes)."""
    lm_mod = pytest.importorskip("nltk.lm")
    from nltk.util import ngrams

    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 5, (6, 25), generator=g).tolist()
    kn = KneserNey(seqs, order=order, vocab=5, discount=0.75, unigram_discount=0.0)
    train = []
    for s in seqs:
        p = [str(kn.bos)] * (order - 1) + [str(t) for t in s]
        sent = []
        for k in range(1, order + 1):  # k-grams ending at a real token, as the suffixes of our top n-grams
            sent += [g_ for i, g_ in enumerate(ngrams(p, k)) if i + k - 1 >= order - 1]
        train.append(sent)
    ref = lm_mod.KneserNeyInterpolated(order, discount=0.75)
    ref.fit(train, lm_mod.Vocabulary([str(i) for i in range(6)], unk_cutoff=1))
    contexts = [tuple(seqs[0][:order - 1]), tuple(seqs[3][5:5 + order - 1]), (kn.bos,) * (order - 1), (4,) * (order - 1)]
    for h in contexts:
        for w in range(5):
            assert kn.prob(w, h) == pytest.approx(ref.score(str(w), [str(t) for t in h]), abs=1e-12), (h, w)
