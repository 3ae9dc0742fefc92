"""The cascade re-scores in fp32 exactly the posts whose low-precision answer could flip."""

import numpy as np

from model.backends import Cascade


class Fixed:
    """A backend that returns given intent logits and urgency level probabilities, and counts its posts."""

    name, precision = "fake", "int8"

    def __init__(self, logits, urgency):
        self.logits, self.urgency, self.seen = np.array(logits, float), np.array(urgency, float), []

    def __call__(self, texts):
        self.seen += texts
        rows = [int(t) for t in texts]
        return self.logits[rows].copy(), self.urgency[rows].copy()


def test_cascade_rescores_posts_near_a_decision_only():
    confident = [5.0, 0.0, 0.0]
    logits = [confident, [1.0, 0.98, 0.0], confident, confident]
    urgency = [
        [0.4, 0.4, 0.1, 0.1],    # two likeliest levels tie, but the median (level 1) is far from flipping
        [0.9, 0.1, 0.0, 0.0],    # intent close call
        [0.1, 0.39, 0.5, 0.01],  # clear likeliest level, but P(level <= 1) = 0.49: the median is about to flip
        [0.7, 0.2, 0.05, 0.05],  # nothing close
    ]
    fast, exact = Fixed(logits, urgency), Fixed(np.zeros((4, 3)), np.full((4, 4), 0.25))
    cascade = Cascade(fast, exact, margin=0.1)
    out_logits, out_urgency = cascade(["0", "1", "2", "3"])
    assert exact.seen == ["1", "2"] and cascade.rescored == 2
    assert np.allclose(out_urgency[[1, 2]], 0.25) and np.allclose(out_urgency[[0, 3]], np.array(urgency)[[0, 3]])
    assert np.allclose(out_logits[0], confident)


def test_cascade_reads_urgency_against_the_models_cuts():
    # P(level > 1) = 0.35: far from the median's 0.5, but at the cut of a model whose cut into "high" is 0.36.
    urgency = [[0.3, 0.35, 0.3, 0.05]]
    for cuts, rescored in (((0.5, 0.5, 0.5), 0), ((0.5, 0.36, 0.5), 1)):
        exact = Fixed(np.zeros((1, 3)), urgency)
        Cascade(Fixed([[5.0, 0.0, 0.0]], urgency), exact, margin=0.1, cuts=cuts)(["0"])
        assert len(exact.seen) == rescored


def test_cascade_warms_up_the_backends_that_need_it():
    class Warm(Fixed):
        def warm_up(self, max_batch):
            self.warmed = max_batch

    fast, exact = Warm([[0.0]], [[1.0, 0, 0, 0]]), Fixed([[0.0]], [[1.0, 0, 0, 0]])
    Cascade(fast, exact, margin=0.1).warm_up(16)
    assert fast.warmed == 16 and not hasattr(exact, "warmed")
