"""Keys, the admin key, the rate limit, CORS, and what the logs may hold."""

import hmac
import logging

import pytest
from fastapi.testclient import TestClient

from model import Predictor
from service.app import create_app
from service.ratelimit import RateLimiter
from service.settings import Settings

SCORING, OTHER, ADMIN = "sk-live-7f3a9c2e", "sk-live-0b1d4e8f", "adm-5e6f7a8b9c"


@pytest.fixture(scope="module")
def predictor(sklearn_model):
    return Predictor.from_pretrained(sklearn_model)


def make(predictor, tmp_path, **settings):
    return TestClient(create_app(Settings(model_dir=tmp_path, **settings), predictor=predictor))


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_keys_are_compared_in_constant_time(predictor, tmp_path, monkeypatch):
    calls, compare = [], hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr("service.app.hmac.compare_digest", spy)
    with make(predictor, tmp_path, api_keys=f"{SCORING},{OTHER}", admin_keys=ADMIN) as c:
        for key in (SCORING, ADMIN, "x", "a much longer wrong key " * 10):
            calls.clear()
            c.post("/v1/score", json={"text": "hi"}, headers=bearer(key))
            # Every key is compared, whichever matches, and as digests of one length: the time says nothing.
            assert calls == [(32, 32)] * 3


def test_admin_endpoints_need_the_admin_key(predictor, tmp_path):
    with make(predictor, tmp_path, api_keys=SCORING, admin_keys=ADMIN) as c:
        missing = {"model_dir": str(tmp_path / "missing")}
        assert c.post("/v1/admin/reload", json=missing).status_code == 401
        assert c.post("/v1/admin/reload", json=missing, headers=bearer(SCORING)).status_code == 403
        r = c.post("/v1/admin/reload", json=missing, headers=bearer(ADMIN))
        assert r.status_code == 422 and r.json()["error_type"] == "bad_model"  # past the key check
    with make(predictor, tmp_path, api_keys=SCORING) as c:  # no admin key set: admin endpoints are off
        r = c.post("/v1/admin/reload", json=missing, headers=bearer(SCORING))
        assert r.status_code == 403 and "TRIAGE_ADMIN_KEYS" in r.json()["error"]
    with make(predictor, tmp_path, admin_keys=ADMIN) as c:  # only an admin key: scoring stays open
        assert c.post("/v1/score", json={"text": "hi"}).status_code == 200
        assert c.post("/v1/admin/reload", json=missing).status_code == 401


def test_rate_limit_answers_429_with_retry_after(predictor, tmp_path):
    with make(predictor, tmp_path, api_keys=f"{SCORING},{OTHER}", rate_limit=0.5, rate_limit_burst=3) as c:
        codes = [c.post("/v1/score", json={"text": "hi"}, headers=bearer(SCORING)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = c.post("/v1/score/batch", json={"posts": [{"text": "hi"}]}, headers=bearer(SCORING))
        assert r.status_code == 429 and r.json()["error_type"] == "rate_limited"
        assert set(r.json()) == {"error", "error_type"}
        assert 1 <= int(r.headers["retry-after"]) <= 2  # a token every 2 s
        # Each key has its own bucket, and a wrong key is refused before it can use one up.
        assert c.post("/v1/score", json={"text": "hi"}, headers=bearer(OTHER)).status_code == 200
        assert c.post("/v1/score", json={"text": "hi"}, headers=bearer("wrong")).status_code == 403
        assert c.get("/health").status_code == 200  # operations endpoints are not limited
        buckets = c.app.state.limiter.buckets
        assert len(buckets) == 2 and not any(k in b for b in buckets for k in (SCORING, OTHER))
        assert c.get("/v1/info", headers=bearer(OTHER)).json()["limits"]["rate_limit_burst"] == 3


def test_rate_limit_is_off_by_default(predictor, tmp_path):
    with make(predictor, tmp_path, api_keys=SCORING) as c:
        assert {c.post("/v1/score", json={"text": "hi"}, headers=bearer(SCORING)).status_code
                for _ in range(30)} == {200}
        assert c.app.state.limiter is None


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=4, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(4)] == [0, 0, 0, 0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.acquire("a") == 0 and limiter.acquire("a") > 0
    now[0] += 100
    assert [limiter.acquire("a") for _ in range(4)] == [0, 0, 0, 0]  # never more than the burst
    assert limiter.acquire("a") > 0 and limiter.acquire("b") == 0
    assert RateLimiter(rate=10).burst == 10 and RateLimiter(rate=0.2).burst == 1


def test_idle_buckets_are_dropped_past_the_cap(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(RateLimiter, "MAX_CLIENTS", 100)
    limiter = RateLimiter(rate=1, burst=1, clock=lambda: now[0])
    for i in range(100):
        limiter.acquire(str(i))
    now[0] += 5  # every bucket is full again
    limiter.acquire("new")
    assert list(limiter.buckets) == ["new"]


def test_no_key_in_any_log_line(predictor, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    with make(predictor, tmp_path, api_keys=SCORING, admin_keys=ADMIN, rate_limit=1, rate_limit_burst=1) as c:
        c.post("/v1/score", json={"text": "hi"}, headers=bearer(SCORING))
        c.post("/v1/score", json={"text": "hi"}, headers=bearer(SCORING))  # 429
        c.post("/v1/score", json={"text": "hi"}, headers=bearer(OTHER))  # 403
        c.post("/v1/admin/reload", json={"model_dir": str(tmp_path / "nope")}, headers=bearer(ADMIN))  # 422
        r = c.post("/v1/score", json={"text": "hi"}, headers={"Authorization": f"Basic {OTHER}"})  # 401
        assert OTHER not in r.text
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert '"route": "/v1/score"' in logged and '"status": 429' in logged and '"status": 403' in logged
    for key in (SCORING, OTHER, ADMIN):
        assert key not in logged


def test_cors_is_closed_by_default(predictor, tmp_path):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    with make(predictor, tmp_path) as c:
        r = c.options("/v1/score", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = c.post("/v1/score", json={"text": "hi"}, headers={"Origin": "https://elsewhere.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    with make(predictor, tmp_path, cors_origins="https://app.example") as c:
        r = c.options("/v1/score", headers={**preflight, "Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.options("/v1/score", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
