"""The micro-batcher: answers go to the right requests, streams run at once, failures reach every waiter."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from model import Predictor
from service.batcher import MicroBatcher


class Slow:
    """Echoes each text after a pause; counts how many batches run at the same time."""

    def __init__(self, fail_on: str | None = None):
        self.now = self.most = 0
        self.lock = threading.Lock()
        self.fail_on = fail_on
        self.sizes = []

    def predict(self, texts):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.sizes.append(len(texts))
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        if self.fail_on in texts:
            raise RuntimeError("model broke")
        return [f"result of {t}" for t in texts]


async def score_all(predictor, streams, texts, max_size=4):
    batcher = MicroBatcher(SimpleNamespace(predictor=predictor), max_size, 0.002, streams)
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit([t]) for t in texts), return_exceptions=True)
    finally:
        await batcher.stop()


@pytest.mark.parametrize("streams", [1, 2])
def test_each_request_gets_its_own_answer_and_streams_overlap(streams):
    fake = Slow()
    texts = [f"post {i}" for i in range(16)]
    answers = asyncio.run(score_all(fake, streams, texts))
    assert [a[0] for a in answers] == [[f"result of {t}"] for t in texts]
    assert fake.most == streams and max(fake.sizes) <= 16


def test_a_backlog_is_shared_out_over_the_streams_in_bigger_batches():
    fake = Slow()
    asyncio.run(score_all(fake, 2, [f"post {i}" for i in range(16)]))
    assert fake.sizes[0] == 8  # half the waiting requests, not the 4 of a quiet moment
    fake = Slow()
    asyncio.run(score_all(fake, 2, [f"post {i}" for i in range(100)]))
    assert max(fake.sizes) == 16  # at most 4x the micro-batch size


def test_a_failed_batch_fails_its_requests_only_and_the_batcher_goes_on():
    fake = Slow(fail_on="post 0")
    answers = asyncio.run(score_all(fake, 2, [f"post {i}" for i in range(12)]))
    failed = [a for a in answers if isinstance(a, Exception)]
    # "post 0" is in the first batch: exactly its requests fail
    assert all(str(e) == "model broke" for e in failed) and len(failed) == fake.sizes[0] < 12
    assert sum(not isinstance(a, Exception) for a in answers) == 12 - len(failed)


def test_a_model_scores_from_two_threads_at_once(tiny_model):
    """What inference streams do: one predictor used by several threads gives the answers it gives alone."""
    p = Predictor.from_pretrained(tiny_model, threads=1)
    texts = [f"my parcel {i} is late again, third time this month" * (1 + i % 3) for i in range(64)]
    alone = [r["intent"] for r in p.predict(texts)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda i: p.predict(texts[i::4]), range(4)))
    assert sorted(r["intent"] for part in together for r in part) == sorted(alone)
