"""A 2-D picture of a feature space: t-SNE (scikit-learn) of features, coloured by class, as a PNG."""

from __future__ import annotations

from pathlib import Path

from deepatlas.errors import UserError
from deepatlas.eval.linear_probe import _np


def tsne_png(features, labels, path: str | Path, title: str = "", seed: int = 0,
             class_names: tuple[str, ...] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    x, y = _np(features), _np(labels).astype(int)
    if len(x) < 2:
        raise UserError(f"a t-SNE picture needs at least 2 examples, got {len(x)}; use a larger --n or test split")
    perplexity = min(30.0, max(2.0, (len(x) - 1) / 3), len(x) - 1.0)  # t-SNE needs perplexity < examples
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    for c in sorted(set(y.tolist())):
        sel = y == c
        name = class_names[c] if class_names and c < len(class_names) else str(c)
        ax.scatter(xy[sel, 0], xy[sel, 1], s=3, label=name, color=plt.cm.tab10(c % 10))
    ax.legend(markerscale=4, fontsize=7, loc="best")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
