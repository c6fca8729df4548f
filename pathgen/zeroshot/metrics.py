"""Classification metrics (pure numpy, checked against scikit-learn in the tests) with seeded
bootstrap CIs. Numpy keeps 1000 bootstrap resamples fast.

Conventions match scikit-learn: balanced accuracy = mean recall over classes present in
``y``; weighted F1 weights per-class F1 by support (zero-division -> 0); macro AUROC is
one-vs-rest over present classes (binary: AUROC of class 1), ties counted half.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

POINT_METRICS = ("accuracy", "balanced_accuracy", "weighted_f1", "macro_auroc")


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class (scikit-learn's layout)."""
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def top_k_accuracy(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((topk == y[:, None]).any(axis=1).mean())


def binary_auroc(pos: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUROC; NaN when only one class is present."""
    n_pos = int(pos.sum())
    n_neg = len(pos) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return binary_auroc(y == 1, probs[:, 1])
    return float(np.mean([binary_auroc(y == c, probs[:, c]) for c in present]))


def point_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    n_classes = probs.shape[1]
    cm = confusion(y, probs.argmax(axis=1), n_classes)
    support, predicted, tp = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(n_classes), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(n_classes), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(n_classes), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / len(y)),
        "balanced_accuracy": float(recall[present].mean()),
        "weighted_f1": float((f1 * support).sum() / support.sum()),
        "macro_auroc": macro_auroc(y, probs),
    }


def bootstrap_ci(y: np.ndarray, probs: np.ndarray, n: int = 1000, seed: int = 0,
                 level: float = 0.95) -> dict[str, list[float]]:
    """Percentile CIs from ``n`` seeded resamples of the test set (with replacement)."""
    if n <= 0:
        return {}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in POINT_METRICS}
    for _ in range(n):
        idx = rng.integers(0, len(y), len(y))
        for k, v in point_metrics(y[idx], probs[idx]).items():
            if np.isfinite(v):
                draws[k].append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {k: [float(np.percentile(v, lo)), float(np.percentile(v, hi))]
            for k, v in draws.items() if v}
