"""Linear-probe accuracy: how linearly separable the classes are in a frozen feature space.

Features are standardised with the training split's mean and std, then a multinomial logistic
regression (scikit-learn, L2 penalty C) is fitted on the training features and scored on the test
features. The encoder is never updated.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(a) -> np.ndarray:
    return a.detach().cpu().double().numpy() if isinstance(a, torch.Tensor) else np.asarray(a, dtype=np.float64)


def linear_probe(train_x, train_y, test_x, test_y, C: float = 1.0, max_iter: int = 1000) -> float:
    """Test accuracy in [0, 1] of logistic regression on (N, D) features."""
    from sklearn.linear_model import LogisticRegression

    xtr, xte = _np(train_x), _np(test_x)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=max_iter)
    clf.fit((xtr - mu) / sd, _np(train_y).astype(int))
    return float(clf.score((xte - mu) / sd, _np(test_y).astype(int)))
