"""Corrections and the prediction log, on SQLite and on a real PostgreSQL."""

import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from eval.bench import wait_ready
from model import Predictor
from service.app import create_app
from service.db import Feedback, Store
from service.settings import Settings
from training.data import check_posts, load_posts
from training.feedback import export_feedback

from .conftest import POSTS, postgres_database
from .test_e2e import start

CORRECTION = {"post_id": "p1", "text": "@SkyFly how do I add a bag to my booking?",
              "predicted": {"intent": "complaint", "urgency": 2, "model_version": "v-test"}, "intent": "question",
              "urgency": 1, "agent": "agent-7"}


@pytest.fixture(scope="module")
def predictor(sklearn_model):
    return Predictor.from_pretrained(sklearn_model)


def app_client(predictor, url, **settings):
    return TestClient(create_app(Settings(database_url=url, **settings), predictor=predictor))


def test_migrations_are_repeatable(database_url):
    store = Store(database_url)
    store.migrate()
    store.migrate()  # a second replica starting finds the schema current and changes nothing
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert conn.execute(select(func.count()).select_from(Feedback)).scalar() == 0
    store.close()


def test_feedback_is_stored_once_per_key(predictor, database_url):
    with app_client(predictor, database_url) as client:
        r = client.post("/v1/feedback", json=CORRECTION, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["replayed"] is False and first["post_id"] == "p1"
        r = client.post("/v1/feedback", json=CORRECTION, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 200 and r.json()["id"] == first["id"] and r.json()["replayed"] is True
        r = client.post("/v1/feedback", json={**CORRECTION, "intent": "other"}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 409 and r.json()["error_type"] == "idempotency_conflict"
        # Without a key every request is a new correction.
        assert client.post("/v1/feedback", json=CORRECTION).json()["id"] != first["id"]
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Feedback)).scalar() == 2
    engine.dispose()


@pytest.mark.parametrize("change, message", [
    ({"intent": "refund"}, "'refund' is not one of the model's intents"),
    ({"also": ["praise", "bogus"]}, "'bogus' is not one of the model's intents"),
    ({"also": ["question"]}, "repeats the primary intent"),
    ({"urgency": 4}, "urgency: Input should be less than or equal to 3"),
    ({"text": "   "}, "text is blank"),
])
def test_feedback_labels_are_checked(predictor, tmp_path, change, message):
    with app_client(predictor, f"sqlite:///{tmp_path}/t.db") as client:
        r = client.post("/v1/feedback", json={**CORRECTION, **change})
    assert r.status_code == 422 and message in r.json()["error"], r.text


def test_prediction_log_and_stats(predictor, database_url):
    with app_client(predictor, database_url, log_predictions=True) as client:
        posts = [{"id": str(i), "text": t} for i, t in enumerate(["my order never came", "love it", "ok", "price?"])]
        assert client.post("/v1/score/batch", json={"posts": posts}).status_code == 200
        assert client.post("/v1/score", json={"text": "where is my refund"}).status_code == 200
        for _ in range(50):  # the log is written in the background
            stats = client.get("/v1/stats", params={"bucket": "day"}).json()
            if sum(b["posts"] for b in stats["buckets"]) == 5:
                break
            time.sleep(0.1)
    assert stats["prediction_log"] is True and len(stats["buckets"]) == 1
    bucket = stats["buckets"][0]
    assert bucket["posts"] == 5 and sum(bucket["intent"].values()) == 5 and sum(bucket["urgency"].values()) == 5
    assert 0 < bucket["mean_confidence"] <= 1
    with Store(database_url).engine.connect() as conn:  # no text unless asked for
        assert conn.execute(text("SELECT count(*) FROM predictions WHERE text IS NOT NULL")).scalar() == 0


@pytest.mark.parametrize("since", ["0", "1764064800", "yesterday"])
def test_stats_since_must_be_a_date(predictor, tmp_path, since):
    with app_client(predictor, f"sqlite:///{tmp_path}/t.db") as client:
        r = client.get("/v1/stats", params={"since": since})
    assert r.status_code == 422 and "since must be an RFC 3339 date-time" in r.json()["error"], r.text


def test_export_later_corrections_win_and_retrain_data_passes(predictor, tmp_path):
    url = f"sqlite:///{tmp_path}/t.db"
    with app_client(predictor, url) as client:
        client.post("/v1/feedback", json=CORRECTION)
        client.post("/v1/feedback", json={**CORRECTION, "intent": "sales_lead", "also": ["question"], "urgency": 2})
        client.post("/v1/feedback", json={"text": "lol ok", "intent": "other"})
    out = tmp_path / "feedback.csv"
    df = export_feedback(url, out)
    assert len(df) == 2
    fixed = df.set_index("id").loc["p1"]
    assert (fixed["intent"], fixed["also"], fixed["urgency"]) == ("sales_lead", "question", 2)
    assert fixed["model_version"] == "v-test"  # the version that made the prediction the agent corrected
    sample = tmp_path / "posts.csv"
    pd.read_csv(POSTS, keep_default_na=False).groupby("intent").head(20).to_csv(sample, index=False)
    merged = load_posts([sample, out])
    assert check_posts(merged, min_per_class=1).ok


def test_scoring_works_without_the_database(predictor, tmp_path):
    missing = f"sqlite:///{tmp_path}/not/a/folder/t.db"
    with app_client(predictor, missing, log_predictions=True) as client:
        assert client.post("/v1/score", json={"text": "my order never came"}).status_code == 200
        r = client.post("/v1/feedback", json=CORRECTION)
        assert r.status_code == 503 and r.headers["retry-after"] and "nothing was stored" in r.json()["error"]
        (tmp_path / "not" / "a" / "folder").mkdir(parents=True)  # the database comes back
        assert client.post("/v1/feedback", json=CORRECTION).status_code == 201


class Proxy:
    """A TCP relay in front of PostgreSQL that a test can cut and restore: the database going away."""

    def __init__(self, port: int):
        self.upstream, self.conns = port, []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open()

    def open(self):
        if self.server.fileno() == -1:
            self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def cut(self):
        for c in [self.server, *self.conns]:
            try:
                c.shutdown(socket.SHUT_RDWR)  # wakes the relay threads; a bare close() would not
            except OSError:
                pass
            c.close()
        self.conns = []

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass


def test_postgres_going_away_and_coming_back(predictor):
    for url in postgres_database():
        proxy = Proxy(5432)
        proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        with app_client(predictor, proxied) as client:
            assert client.post("/v1/feedback", json=CORRECTION).status_code == 201
            proxy.cut()
            r = client.post("/v1/feedback", json={**CORRECTION, "post_id": "p2"}, headers={"Idempotency-Key": "a"})
            assert r.status_code == 503 and r.headers["retry-after"]
            assert client.post("/v1/score", json={"text": "my order never came"}).status_code == 200
            proxy.open()
            r = client.post("/v1/feedback", json={**CORRECTION, "post_id": "p2"}, headers={"Idempotency-Key": "a"})
            assert r.status_code == 201, r.text
        with create_engine(url).connect() as conn:  # the failed attempt left nothing behind
            assert conn.execute(select(Feedback.post_id).order_by(Feedback.id)).scalars().all() == ["p1", "p2"]


@pytest.mark.slow
def test_concurrent_corrections_are_stored_exactly_once(sklearn_model, database_url):
    """20 clients send 50 corrections each at once; every 5th is sent twice at the same moment."""
    # Its log (a line per request) goes nowhere: an unread pipe would fill up and stall the server.
    proc, port = start(sklearn_model, env={"TRIAGE_DATABASE_URL": database_url}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/feedback"

    def post(client, n, key):
        body = {"post_id": key, "text": f"client {n} says: order {key} never arrived", "intent": "complaint",
                "urgency": 1}
        r = client.post(url, json=body, headers={"Idempotency-Key": key}, timeout=60)
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def one_client(n):
        ids = {}
        with httpx.Client() as client, ThreadPoolExecutor(2) as twin:
            for i in range(50):
                key = f"c{n}-{i}"
                if i % 5 == 0:
                    a, b = twin.submit(post, client, n, key), twin.submit(post, client, n, key)
                    assert a.result() == b.result()
                    ids[key] = a.result()
                else:
                    ids[key] = post(client, n, key)
        return ids

    try:
        wait_ready(port, proc)
        with ThreadPoolExecutor(20) as pool:
            ids = {k: v for part in pool.map(one_client, range(20)) for k, v in part.items()}
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(Feedback.idempotency_key, Feedback.id)).all()
    engine.dispose()
    assert len(rows) == 1000 and dict(rows) == ids
