"""Hot reload reaches every process that shares the database: other workers, other replicas, later starts."""

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from model import Predictor
from service.app import create_app
from service.settings import Settings


def version(client) -> str | None:
    r = client.get("/ready")
    return r.json().get("model_version") if r.status_code == 200 else None


def wait_for(client, expected: str, seconds: float = 30) -> str | None:
    deadline = time.time() + seconds
    while (seen := version(client)) != expected and time.time() < deadline:
        time.sleep(0.05)
    return seen


@pytest.fixture
def url(database_url):
    return database_url  # a fresh SQLite file, and a fresh PostgreSQL database


def replica(url, model_dir, predictor=None):
    settings = Settings(database_url=url, model_dir=model_dir, reload_poll_seconds=0.1)
    return TestClient(create_app(settings, predictor=predictor))


def test_a_reload_reaches_the_other_replica_and_later_starts(url, tiny_model, sklearn_model, tmp_path):
    tiny = Predictor.from_pretrained(tiny_model)
    sk_version = Predictor.from_pretrained(sklearn_model).version
    with replica(url, tiny_model, tiny) as a, replica(url, tiny_model, tiny) as b:
        r = a.post("/v1/admin/reload", json={"model_dir": str(sklearn_model)})
        assert r.status_code == 200 and r.json()["shared"] is True, r.text
        assert version(a) == sk_version
        assert wait_for(b, sk_version) == sk_version
        assert b.post("/v1/score", json={"text": "where is my bag"}).json()["model_version"] == sk_version
    # A replica started later over the same configured folder serves the reloaded model ...
    with replica(url, tiny_model) as c:
        assert wait_for(c, sk_version) == sk_version
    # ... and one configured with another folder serves its own: the configuration changed since the reload.
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    with replica(url, other) as d:
        assert wait_for(d, tiny.version) == tiny.version


def test_a_reload_that_another_replica_cannot_load_leaves_it_serving(url, tiny_model, sklearn_model, tmp_path):
    sk = Predictor.from_pretrained(sklearn_model)
    movable = tmp_path / "moved"
    shutil.copytree(tiny_model, movable)
    with replica(url, sklearn_model, sk) as a:
        assert a.post("/v1/admin/reload", json={"model_dir": str(movable)}).status_code == 200
        shutil.rmtree(movable)  # gone before the next replica looks
        with replica(url, sklearn_model) as b:
            time.sleep(0.5)
            assert wait_for(b, sk.version) == sk.version  # fell back to its configured folder, and serves


def test_reload_without_the_database_swaps_this_process_only(sklearn_model, tiny_model):
    sk = Predictor.from_pretrained(sklearn_model)
    with replica("postgresql+psycopg://nobody@127.0.0.1:9/none", sklearn_model, sk) as a:
        r = a.post("/v1/admin/reload", json={"model_dir": str(tiny_model)})
        assert r.status_code == 200 and r.json()["shared"] is False, r.text
        assert version(a) == Predictor.from_pretrained(tiny_model).version
