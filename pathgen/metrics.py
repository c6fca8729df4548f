"""Classification metric helpers shared by the zero-shot and MIL evaluations.

Conventions match scikit-learn: rows of the confusion matrix are the true class; balanced
accuracy is the mean recall over the classes present in ``y``; a class's F1 is 0 where it is
undefined. Macro AUROC is scikit-learn's ``roc_auc_score``, one-vs-rest and macro-averaged
over the classes present in ``y`` (a class absent from ``y`` has no AUROC and is left out;
binary: the AUROC of class 1). Undefined values are NaN, never an exception, since small test
and validation sets often hold one class.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class (scikit-learn's layout)."""
    y, pred = np.asarray(y, int), np.asarray(pred, int)
    return np.bincount(y * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (0 for a class absent from ``y``)."""
    support = cm.sum(axis=1)
    return np.divide(np.diag(cm), support, out=np.zeros(len(cm)), where=support > 0)


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes present in ``y``; NaN when there are none."""
    present = cm.sum(axis=1) > 0
    return float(per_class_recall(cm)[present].mean()) if present.any() else math.nan


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """F1 = 2 tp / (support + predicted) of each class; 0 where both are 0."""
    denom = cm.sum(axis=1) + cm.sum(axis=0)
    return np.divide(2 * np.diag(cm), denom, out=np.zeros(len(cm)), where=denom > 0)


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> float:
    """One-vs-rest macro AUROC over the classes present in ``y`` (binary: AUROC of p_1);
    NaN when fewer than two classes are present or a score is not finite."""
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=float)
    present = [c for c in range(probs.shape[1]) if (y == c).any()]
    if len(present) < 2 or not np.isfinite(probs[:, present]).all():
        return math.nan
    if probs.shape[1] == 2:
        return float(roc_auc_score(y == 1, probs[:, 1]))
    # One indicator column per present class: scikit-learn's macro average over columns.
    indicator = (y[:, None] == np.asarray(present)[None, :]).astype(int)
    return float(roc_auc_score(indicator, probs[:, present], average="macro"))
