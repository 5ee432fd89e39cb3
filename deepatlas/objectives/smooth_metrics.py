"""Smooth surrogates of accuracy and F1: the argmax / threshold replaced by a tempered softmax / sigmoid.

With logits z_i (K classes) and temperature tau, the soft prediction is p_i = softmax(z_i / tau); as tau -> 0
it tends to the one-hot argmax (where the top logit is unique), so every count built from it tends to its
discrete value:

    smooth accuracy  A_tau = 1/B sum_i p_i[y_i]
    soft counts      TP_c = sum_i p_i[c] 1[y_i = c],  FP_c = sum_i p_i[c] 1[y_i != c],  FN_c = sum_i (1 - p_i[c]) 1[y_i = c]
    smooth F1        F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)

"binary" F1 is that of class 1 (with two logits, p_i[1] = sigmoid((z_i1 - z_i0) / tau), a sigmoid with
threshold 0 on the logit difference); "macro" averages F1_c over the classes. The losses are 1 - metric.
Computed on a mini-batch, F1 is a ratio of batch sums: its gradient couples the examples of a batch, which
is the point (cross-entropy scores each example alone and ignores how rare the positive class is).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_predictions(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B, K) logits -> (B, K) softmax(z / tau); tau = 0 gives the one-hot argmax."""
    if temperature <= 0:
        return F.one_hot(logits.argmax(1), logits.shape[1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=1)


def smooth_accuracy(logits: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return soft_predictions(logits, temperature).gather(1, y[:, None]).mean()


def smooth_f1(logits: torch.Tensor, y: torch.Tensor, temperature: float = 1.0, average: str = "binary",
              eps: float = 1e-12) -> torch.Tensor:
    """Soft-count F1 of class 1 ('binary') or the mean over classes ('macro'); a class with no true and no
    predicted examples has F1 = 0 (as scikit-learn's default zero_division)."""
    p = soft_predictions(logits, temperature)  # (B, K)
    onehot = F.one_hot(y, logits.shape[1]).to(p.dtype)
    tp = (p * onehot).sum(0)
    fp = (p * (1 - onehot)).sum(0)
    fn = ((1 - p) * onehot).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(eps)  # (K,)
    if average == "binary":
        return f1[1]
    if average == "macro":
        return f1.mean()
    raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return smooth_accuracy(logits, y, temperature=0.0)


def f1(logits: torch.Tensor, y: torch.Tensor, average: str = "binary") -> torch.Tensor:
    return smooth_f1(logits, y, temperature=0.0, average=average)
