"""Zero-shot classification metrics with seeded bootstrap CIs.

Conventions match scikit-learn (see :mod:`pathgen.metrics`, shared with the MIL stage):
balanced accuracy = mean recall over classes present in ``y``; weighted F1 weights per-class
F1 by support (zero-division -> 0); macro AUROC is scikit-learn's one-vs-rest macro over the
present classes (binary: AUROC of class 1).
"""

from __future__ import annotations

import numpy as np

from ..metrics import balanced_accuracy, confusion, macro_auroc, per_class_f1

__all__ = ["POINT_METRICS", "bootstrap_ci", "confusion", "macro_auroc", "point_metrics",
           "top_k_accuracy"]

POINT_METRICS = ("accuracy", "balanced_accuracy", "weighted_f1", "macro_auroc")


def top_k_accuracy(y: np.ndarray, probs: np.ndarray, k: int) -> float:
    k = min(k, probs.shape[1])
    topk = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((topk == y[:, None]).any(axis=1).mean())


def point_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    cm = confusion(y, probs.argmax(axis=1), probs.shape[1])
    support = cm.sum(axis=1)
    return {
        "accuracy": float(np.diag(cm).sum() / len(y)),
        "balanced_accuracy": balanced_accuracy(cm),
        "weighted_f1": float((per_class_f1(cm) * support).sum() / support.sum()),
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
