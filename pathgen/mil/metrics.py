"""Classification metrics, pure numpy (checked against scikit-learn in the tests).

Macro AUROC is one-vs-rest over the classes present in `y_true` (binary: AUROC of p_1);
undefined values are NaN, never an exception, since small validation sets often hold one class.
"""

from __future__ import annotations

import math

import numpy as np


def _rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) with ties sharing the mean rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=float)
    i = 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def binary_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg); NaN when only one class is present."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = _rankdata(np.asarray(score, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=float)
    if probs.shape[1] == 2:
        return binary_auroc(y == 1, probs[:, 1])
    present = [c for c in range(probs.shape[1]) if (y == c).any()]
    if len(present) < 2:
        return math.nan
    return float(np.mean([binary_auroc(y == c, probs[:, c]) for c in present]))


def confusion(y: np.ndarray, y_hat: np.ndarray, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(m, (np.asarray(y, int), np.asarray(y_hat, int)), 1)
    return m


def macro_f1(y: np.ndarray, y_hat: np.ndarray, n_classes: int) -> float:
    """Mean F1 over classes seen in y or y_hat (scikit-learn's label set); 0 where undefined."""
    m = confusion(y, y_hat, n_classes)
    labels = [c for c in range(n_classes) if m[c, :].sum() or m[:, c].sum()]
    if not labels:
        return math.nan
    f1 = []
    for c in labels:
        tp, fp, fn = m[c, c], m[:, c].sum() - m[c, c], m[c, :].sum() - m[c, c]
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1))


def balanced_accuracy(y: np.ndarray, y_hat: np.ndarray, n_classes: int) -> float:
    """Mean recall over classes present in y."""
    m = confusion(y, y_hat, n_classes)
    rec = [m[c, c] / m[c, :].sum() for c in range(n_classes) if m[c, :].sum()]
    return float(np.mean(rec)) if rec else math.nan


def cross_entropy(y: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, float)[np.arange(len(y)), np.asarray(y, int)], 1e-12, 1.0)
    return float(-np.log(p).mean()) if len(y) else math.nan


def classification_metrics(y: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, int)
    probs = np.asarray(probs, float)
    if len(y) == 0:
        return {k: math.nan for k in ("accuracy", "balanced_accuracy", "auroc", "f1", "loss")}
    y_hat = probs.argmax(1)
    n = probs.shape[1]
    return {"accuracy": float((y_hat == y).mean()),
            "balanced_accuracy": balanced_accuracy(y, y_hat, n),
            "auroc": macro_auroc(y, probs),
            "f1": macro_f1(y, y_hat, n),
            "loss": cross_entropy(y, probs)}


METRIC_NAMES = ("accuracy", "balanced_accuracy", "auroc", "f1")


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd (ddof=1) over the finite values; NaN when none."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
