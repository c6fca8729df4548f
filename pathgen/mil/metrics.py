"""MIL classification metrics (shared helpers and conventions: :mod:`pathgen.metrics`).

Macro AUROC is scikit-learn's one-vs-rest macro over the classes present in `y_true`
(binary: AUROC of p_1); undefined values are NaN, never an exception, since small validation
sets often hold one class.
"""

from __future__ import annotations

import math

import numpy as np

from ..metrics import balanced_accuracy, confusion, macro_auroc, per_class_f1

__all__ = ["METRIC_NAMES", "classification_metrics", "cross_entropy", "macro_auroc",
           "macro_f1", "mean_sd"]


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over classes seen in y or y_hat (scikit-learn's label set); NaN when none."""
    seen = (cm.sum(axis=1) + cm.sum(axis=0)) > 0
    return float(per_class_f1(cm)[seen].mean()) if seen.any() else math.nan


def cross_entropy(y: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, float)[np.arange(len(y)), np.asarray(y, int)], 1e-12, 1.0)
    return float(-np.log(p).mean()) if len(y) else math.nan


def classification_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, int)
    probs = np.asarray(probs, float)
    if len(y) == 0:
        return {k: math.nan for k in ("accuracy", "balanced_accuracy", "auroc", "f1", "loss")}
    y_hat = probs.argmax(1)
    cm = confusion(y, y_hat, probs.shape[1])
    return {"accuracy": float((y_hat == y).mean()),
            "balanced_accuracy": balanced_accuracy(cm),
            "auroc": macro_auroc(y, probs),
            "f1": macro_f1(cm),
            "loss": cross_entropy(y, probs)}


METRIC_NAMES = ("accuracy", "balanced_accuracy", "auroc", "f1")


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (ddof=1) over the finite values; NaN when none."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
