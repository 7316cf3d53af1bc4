"""Classification metrics the paper reports, in numpy (used by training, verify and demo)."""

from __future__ import annotations

import numpy as np


def _binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted as half; NaN if only one class is present."""
    pos, neg = scores[positive], scores[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    values = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(values))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2 + 1
        i = j + 1
    pos_ranks = np.empty(len(values))
    pos_ranks[order] = ranks
    r = pos_ranks[: len(pos)].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """labels [N] ints; probabilities [N] (binary, positive class) or [N, C].

    Binary: F1/precision/recall of class 1. Multi-class: macro averages and one-vs-rest AUC.
    """
    labels = np.asarray(labels, dtype=int)
    probs = np.asarray(probabilities, dtype=float)
    if probs.ndim == 1:
        probs = np.stack([1 - probs, probs], axis=1)
    predicted = probs.argmax(axis=1)
    classes = range(probs.shape[1])
    precisions, recalls, f1s, aucs = [], [], [], []
    for c in classes:
        tp = np.sum((predicted == c) & (labels == c))
        fp = np.sum((predicted == c) & (labels != c))
        fn = np.sum((predicted != c) & (labels == c))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(p)
        recalls.append(r)
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        aucs.append(_binary_auc(probs[:, c], labels == c))
    if probs.shape[1] == 2:
        pick = slice(1, 2)
        auc = aucs[1]
    else:
        pick = slice(None)
        valid = [a for a in aucs if not np.isnan(a)]
        auc = float(np.mean(valid)) if valid else float("nan")
    return {
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "auc": float(auc),
        "f1": float(np.mean(f1s[pick])),
        "precision": float(np.mean(precisions[pick])),
        "recall": float(np.mean(recalls[pick])),
        "n": int(len(labels)),
    }
