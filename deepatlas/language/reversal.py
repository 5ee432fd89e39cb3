"""Accuracy on the key-value reversal task (`deepatlas.data.reversal`), greedy decoding:

- forward: prompt "A is " -> does the model write B? (it generates the name and the full stop)
- reverse: prompt "B is " -> does it write A? (a fact never seen in this direction: the reversal curse)
- infill (masked models only): "____ is B." with the first name masked -> does it fill in A?
"""

from __future__ import annotations

import torch


@torch.no_grad()
def reversal_accuracy(method, dataset, limit: int = 400) -> dict:
    tok, k = method.tokenizer, dataset.info.extra["name_len"]
    pairs = dataset.info.extra["pairs"][:limit]
    A = torch.stack([tok.encode(a) for a, _ in pairs])
    Bn = torch.stack([tok.encode(b) for _, b in pairs])
    is_ = tok.encode(" is ").expand(len(pairs), -1)
    # k + 1 tokens: the name and the full stop, so that a fixed-length (diffusion) answer has the trained length
    greedy = method.greedy_options(k + 1)
    P = A.shape[1] + is_.shape[1]
    fwd = method.complete(torch.cat([A, is_], 1), greedy)[:, P:P + k]
    rev = method.complete(torch.cat([Bn, is_], 1), greedy)[:, P:P + k]
    out = {"forward_accuracy": float((fwd == Bn).all(1).float().mean()),
           "reverse_accuracy": float((rev == A).all(1).float().mean())}
    if method.can_infill:
        x = torch.cat([A, is_, Bn, tok.encode(".").expand(len(pairs), -1)], 1)
        known = torch.ones_like(x, dtype=torch.bool)
        known[:, :k] = False
        out["infill_reverse_accuracy"] = float((method.infill(x, known)[:, :k] == A).all(1).float().mean())
    return out
