"""The real server process: start, score over HTTP, reload, shut down cleanly."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from eval.bench import free_port, wait_ready

from .conftest import ROOT

pytestmark = pytest.mark.slow


def start(model_dir, *extra, env=None, stdout=subprocess.PIPE):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--model-dir", str(model_dir),
                             *extra], cwd=ROOT, stdout=stdout, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    return proc, port


def test_serve_score_reload_and_stop(tiny_model, sklearn_model):
    proc, port = start(tiny_model, env={"TRIAGE_ADMIN_KEYS": "adm", "TRIAGE_API_KEYS": "key"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(port, proc)
        auth = {"Authorization": "Bearer key"}
        r = httpx.post(f"{url}/v1/score", json={"text": "@SkyFly lost my bag"}, headers=auth)
        assert r.status_code == 200 and r.json()["intent"]
        old = r.json()["model_version"]
        r = httpx.post(f"{url}/v1/score/batch", json={"posts": [{"text": "a"}, {"text": "b"}]}, headers=auth)
        assert len(r.json()["results"]) == 2
        r = httpx.post(f"{url}/v1/admin/reload", json={"model_dir": str(sklearn_model)},
                       headers={"Authorization": "Bearer adm"}, timeout=60)
        assert r.status_code == 200 and r.json()["previous_version"] == old
        r = httpx.post(f"{url}/v1/score", json={"text": "hi"}, headers=auth)
        assert r.json()["model_version"] != old
        assert "triage_requests_total" in httpx.get(f"{url}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn re-raises SIGTERM after its graceful shutdown; "stopped" is logged once requests are drained.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert '"event": "stopped"' in out
    assert '"route": "/v1/score"' in out and "@SkyFly" not in out


def test_missing_model_stops_startup(tmp_path):
    proc, _ = start(tmp_path / "nope")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "nope does not exist" in out


def test_broken_routing_stops_startup(tiny_model, tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("routes:\n  - {intents: [complaint], queue: x, priority: P0, respond_within_minutes: 5}\n")
    proc, _ = start(tiny_model, "--routing", str(rules))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "line 2" in out and "priority" in out


def test_workers_each_load_the_model_share_the_port_and_all_follow_a_reload(tiny_model, sklearn_model, tmp_path):
    """`--workers 2`: two processes, each with its own model, behind one port; a reload sent to one reaches
    both; both stop cleanly."""
    log = tmp_path / "out.log"
    port = free_port()
    env = {**os.environ, "TRIAGE_DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "TRIAGE_RELOAD_POLL_SECONDS": "0.5"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--model-dir", str(tiny_model),
                                 "--workers", "2"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    scores = 0
    try:
        wait_ready(port, proc)
        deadline = time.time() + 120
        while log.read_text().count('"event": "model_loaded"') < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert log.read_text().count('"event": "model_loaded"') == 2, log.read_text()
        close = {"Connection": "close"}  # a new connection each time, so both workers answer
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for i in range(10):
                r = client.post("/v1/score", json={"text": f"my order {i} never arrived"}, headers=close)
                assert r.status_code == 200 and r.json()["intent"]
            r = client.post("/v1/admin/reload", json={"model_dir": str(sklearn_model)}, timeout=60)
            assert r.status_code == 200 and r.json()["shared"] is True, r.text
            new = r.json()["model_version"]
            while '"event": "reload_followed"' not in log.read_text() and time.time() < deadline:
                time.sleep(0.2)
            versions = {client.post("/v1/score", json={"text": "hi"}, headers=close).json()["model_version"]
                        for _ in range(20)}
            scores = 30
            assert versions == {new}, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert text.count('"event": "stopped"') == 2 and text.count('"route": "/v1/score"') == scores
    assert text.count('"event": "model_reloaded"') == 1 and text.count('"event": "reload_followed"') == 1
