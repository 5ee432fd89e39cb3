"""k-nearest-neighbour accuracy in a frozen feature space (cosine similarity, majority vote).

Each test feature is compared with every training feature by cosine similarity; the k most similar
vote, ties broken towards the smaller class id (scikit-learn's convention). No parameters are fitted,
so this measures the geometry the encoder learned, not what a classifier can extract from it.
"""

from __future__ import annotations

import numpy as np

from deepatlas.eval.linear_probe import _np


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 10) -> float:
    """Test accuracy in [0, 1] of a k-NN vote under cosine similarity."""
    from sklearn.neighbors import KNeighborsClassifier

    k = min(k, len(_np(train_y)))
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    clf.fit(_np(train_x), _np(train_y).astype(int))
    return float(np.mean(clf.predict(_np(test_x)) == _np(test_y).astype(int)))
