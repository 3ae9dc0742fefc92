"""The HTTP contract, through FastAPI's test client."""

import json

import pytest
from fastapi.testclient import TestClient

from model import Predictor
from service.app import create_app
from service.schemas import BatchScore, Score
from service.settings import Settings


@pytest.fixture(scope="module")
def predictor(sklearn_model):
    return Predictor.from_pretrained(sklearn_model)


@pytest.fixture
def client(predictor, tmp_path):
    with TestClient(create_app(Settings(model_dir=tmp_path), predictor=predictor)) as c:
        yield c


@pytest.fixture
def secured(predictor, tmp_path):
    settings = Settings(model_dir=tmp_path, api_keys="k1,k2", admin_keys="admin")
    with TestClient(create_app(settings, predictor=predictor)) as c:
        yield c


POST = {"id": "42", "text": "@SkyFly my flight is cancelled and I'm stuck at the airport",
        "author": {"followers": 1200, "verified": False}, "engagement": {"likes": 3, "shares": 0, "replies": 1},
        "channel": "twitter", "created_at": "2026-11-25T10:00:00Z"}


def test_score_contract(client, predictor):
    r = client.post("/v1/score", json=POST)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "intent", "scores", "also", "urgency", "route", "model_version"}
    assert body["id"] == "42" and body["intent"] in predictor.labels
    assert set(body["scores"]) == set(predictor.labels) and abs(sum(body["scores"].values()) - 1) < 1e-3
    assert set(body["urgency"]) == {"level", "name", "score", "reasons"} and body["urgency"]["reasons"]
    assert set(body["route"]) == {"queue", "priority", "respond_within_minutes"}
    assert body["model_version"] == predictor.version
    assert r.headers["x-request-id"]
    Score.model_validate(body)  # the service builds its output as dicts; the schema is the contract


def test_only_text_is_required(client):
    r = client.post("/v1/score", json={"text": "ok"})
    assert r.status_code == 200 and r.json()["id"] is None


def test_batch_keeps_order(client, predictor):
    texts = [f"post {i}: my order {i} is late" if i % 2 else f"thanks for everything {i}" for i in range(20)]
    r = client.post("/v1/score/batch", json={"posts": [{"id": str(i), "text": t} for i, t in enumerate(texts)]})
    assert r.status_code == 200
    body = r.json()
    assert [x["id"] for x in body["results"]] == [str(i) for i in range(20)]
    assert [x["intent"] for x in body["results"]] == [p["intent"] for p in predictor.predict(texts)]
    assert body["model_version"] == predictor.version
    BatchScore.model_validate(body)


@pytest.mark.parametrize("payload,where", [
    ({"text": ""}, "body.text"),
    ({"text": "   "}, "text is blank"),
    ({"text": "x" * 10_001}, "at most 10000 characters"),
    ({"text": "a\x00b"}, "null byte"),
    ({"text": 5}, "body.text"),
    ({}, "body.text: Field required"),
    ({"text": "hi", "id": "x" * 129}, "body.id"),
    ({"text": "hi", "author": {"followers": -1}}, "body.author.followers"),
])
def test_bad_posts_are_422_with_location(client, payload, where):
    r = client.post("/v1/score", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert body["error_type"] == "validation_error" and where in body["error"]


def test_malformed_json_is_422(client):
    r = client.post("/v1/score", content=b'{"text": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]


def test_batch_limits(client):
    assert client.post("/v1/score/batch", json={"posts": []}).status_code == 422
    r = client.post("/v1/score/batch", json={"posts": [{"text": "hi"}] * 513})
    assert r.status_code == 413 and r.json()["error_type"] == "too_many_posts"


def test_body_size_limit(client):
    r = client.post("/v1/score", content=b"x" * (9 * 1024 * 1024), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "body_too_large"


def test_body_size_limit_for_chunked_uploads(client):
    def chunks(n):
        for _ in range(n):
            yield b" " * (1024 * 1024)

    r = client.post("/v1/score", content=chunks(9), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "body_too_large"

    def small():
        yield b'{"text": '
        yield b'"chunked but small"}'

    r = client.post("/v1/score", content=small(), headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["intent"]


def test_escalation_appears_in_reasons(client):
    post = {"text": "@SkyFly my flight is cancelled", "author": {"followers": 250_000, "verified": True}}
    body = client.post("/v1/score", json=post).json()
    if body["intent"] in ("complaint", "question", "sales_lead"):
        assert "author reach: 250k followers" in body["urgency"]["reasons"]


def test_info_health_ready_metrics(client, predictor):
    info = client.get("/v1/info").json()
    assert info["labels"] == predictor.labels and info["limits"]["max_batch_posts"] == 512
    assert info["routing"]["routes"][0]["queue"] == "escalation"
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200
    client.post("/v1/score", json={"text": "hello"})
    metrics = client.get("/metrics").text
    assert 'triage_requests_total{route="/v1/score",status="200"}' in metrics
    assert "triage_posts_scored_total" in metrics and "triage_request_seconds_bucket" in metrics
    assert f'triage_model_info{{version="{predictor.version}"}} 1.0' in metrics


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/v1/score" in schema["paths"] and "/v1/score/batch" in schema["paths"]


def test_api_keys(secured):
    r = secured.post("/v1/score", json={"text": "hi"})
    assert r.status_code == 401 and r.json()["error_type"] == "unauthorized"
    r = secured.post("/v1/score", json={"text": "hi"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 403
    assert secured.post("/v1/score", json={"text": "hi"}, headers={"Authorization": "Bearer k2"}).status_code == 200
    assert secured.get("/health").status_code == 200 and secured.get("/ready").status_code == 200


def test_admin_needs_admin_key(secured):
    r = secured.post("/v1/admin/reload", json={}, headers={"Authorization": "Bearer k1"})
    assert r.status_code == 403


def test_keys_are_not_logged(secured, caplog):
    caplog.set_level("INFO", logger="service")
    secured.post("/v1/score", json={"text": "secret text"}, headers={"Authorization": "Bearer k1"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "k1" not in logged and "secret text" not in logged
    line = json.loads([r.getMessage() for r in caplog.records if '"/v1/score"' in r.getMessage()][-1])
    assert line["status"] == 200 and line["posts"] == 1 and "latency_ms" in line


def test_reload_swaps_and_bad_folder_keeps_old(client, tiny_model, tmp_path, predictor):
    bad = client.post("/v1/admin/reload", json={"model_dir": str(tmp_path / "missing")})
    assert bad.status_code == 422 and "still serving" in bad.json()["error"]
    assert client.post("/v1/score", json={"text": "hi"}).json()["model_version"] == predictor.version
    ok = client.post("/v1/admin/reload", json={"model_dir": str(tiny_model)})
    assert ok.status_code == 200 and ok.json()["previous_version"] == predictor.version
    new = Predictor.from_pretrained(tiny_model).version
    assert client.post("/v1/score", json={"text": "hi"}).json()["model_version"] == new


def test_batching_defaults_follow_the_backend(monkeypatch):
    openvino, torch = Settings().for_backend("openvino"), Settings().for_backend("torch")
    assert (openvino.inference_streams, openvino.micro_batch_size) == (4, 4)
    assert (torch.inference_streams, torch.micro_batch_size) == (2, 8)
    monkeypatch.setenv("TRIAGE_MICRO_BATCH_SIZE", "16")  # what is set is kept
    chosen = Settings().for_backend("openvino")
    assert (chosen.inference_streams, chosen.micro_batch_size) == (4, 16)
