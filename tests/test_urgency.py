"""The urgency level from the ordinal head's probabilities, and the cut fitted for recall of urgent posts."""

import numpy as np

from model.calibration import MEDIAN, fit_urgency_cuts
from model.predictor import urgency_level


def test_median_cuts_give_the_median_level():
    probs = np.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.3, 0.3, 0.3], [0.1, 0.1, 0.2, 0.6], [0.3, 0.19, 0.5, 0.01]])
    assert urgency_level(probs, MEDIAN).tolist() == [0, 2, 3, 2]
    assert int(urgency_level(probs[0])) == 0


def test_a_lower_cut_into_high_raises_only_posts_near_it():
    probs = np.array([[0.2, 0.45, 0.3, 0.05],    # P(level > 1) = 0.35
                      [0.45, 0.35, 0.15, 0.05],  # 0.20
                      [0.45, 0.1, 0.05, 0.4]])   # 0.45 though P(level > 0) is 0.55: still at least high
    assert urgency_level(probs).tolist() == [1, 1, 1]
    assert urgency_level(probs, (0.5, 0.3, 0.5)).tolist() == [2, 1, 2]


def test_fitted_cut_reaches_the_recall_on_the_posts_it_was_fitted_on():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 4, 400)
    # A head that under-calls urgency: the urgent posts' P(level > 1) sits mostly just under one half.
    high = np.where(levels >= 2, rng.uniform(0.25, 0.7, 400), rng.uniform(0.0, 0.4, 400))
    probs = np.stack([np.full(400, 0.1), 0.9 - high, high * 0.8, high * 0.2], axis=1)
    cuts = fit_urgency_cuts(probs, levels, recall=0.9)
    assert cuts[0] == cuts[2] == 0.5 and cuts[1] < 0.5
    predicted = urgency_level(probs, cuts)
    assert ((predicted >= 2) & (levels >= 2)).sum() / (levels >= 2).sum() >= 0.9
    assert fit_urgency_cuts(probs, levels, recall=0) == list(MEDIAN)
