"""The figures every report, training run and comparison uses, computed one way."""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_recall_fscore_support,
)


def intent_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict:
    present = [label for label in labels if label in set(y_true) | set(y_pred)]
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=[x for x in present if x in set(y_true)],
                             average="macro", zero_division=0),
        "per_class": {label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                              "support": int(n[i])} for i, label in enumerate(present)},
        "confusion": {"labels": present, "matrix": confusion_matrix(y_true, y_pred, labels=present).tolist()},
    }
    if "complaint" in labels:
        out["complaint_f1"] = f1_score([y == "complaint" for y in y_true],
                                       [y == "complaint" for y in y_pred], zero_division=0)
    return out


def urgency_metrics(y_true, y_pred, levels: int = 4) -> dict:
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if len(y_true) == 0:
        return {}
    high_true, high_pred = y_true >= 2, y_pred >= 2
    return {
        "qwk": float(cohen_kappa_score(y_true, y_pred, weights="quadratic", labels=list(range(levels)))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "high_recall": float((high_true & high_pred).sum() / max(high_true.sum(), 1)),
        "high_precision": float((high_true & high_pred).sum() / max(high_pred.sum(), 1)),
        "confusion": confusion_matrix(y_true, y_pred, labels=list(range(levels))).tolist(),
    }


def headline(intent: dict, urgency: dict) -> dict:
    """The few figures a table shows."""
    out = {"intent_macro_f1": intent["macro_f1"], "intent_accuracy": intent["accuracy"]}
    if "complaint_f1" in intent:
        out["complaint_f1"] = intent["complaint_f1"]
    if urgency:
        out.update({"urgency_qwk": urgency["qwk"], "urgency_high_recall": urgency["high_recall"]})
    return out
