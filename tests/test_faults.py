"""Faults: hot reload under load, a corrupt model, SIGTERM with requests in flight, and training output that
cannot be written (read-only, full disk). Nothing may be lost or left half-written."""

import asyncio
import errno
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from eval.bench import bench_texts, free_port, wait_ready
from eval.load import Tally, hammer
from model import META_FILE, Predictor, read_metadata
from service.app import create_app
from service.settings import Settings
from training.cli import app as training_cli

from .conftest import ROOT

pytestmark = pytest.mark.slow

SCORING_KEY, ADMIN_KEY = "sk-fault-3b9e1c", "adm-fault-8d2f4a"


def start(model_dir, log: Path, env=None) -> tuple[subprocess.Popen, int]:
    # The log goes to a file: under load a pipe nobody reads fills up, and the server blocks on its log line.
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--model-dir", str(model_dir)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    return proc, port


def stop(proc: subprocess.Popen, log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    out = log.read_text()
    assert proc.returncode in (0, -signal.SIGTERM), out  # uvicorn re-raises SIGTERM once it has drained
    return out


# ---- the service ---------------------------------------------------------------------------------------
def test_reload_under_load_loses_no_request(tiny_model, sklearn_model, tmp_path):
    log = tmp_path / "service.log"
    proc, port = start(tiny_model, log, {"TRIAGE_API_KEYS": SCORING_KEY, "TRIAGE_ADMIN_KEYS": ADMIN_KEY})
    url, scoring = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {SCORING_KEY}"}
    load, done = Tally(), threading.Event()
    clients = threading.Thread(target=lambda: asyncio.run(
        hammer(port, bench_texts(400)[0], clients=8, seconds=300, headers=scoring, stop=done, tally=load)))
    try:
        wait_ready(port, proc)
        clients.start()
        time.sleep(2)
        during = 0  # requests answered while a reload was loading and swapping
        for target in (sklearn_model, tiny_model):  # to another model and back, both under load
            before = len(load.single) + len(load.batch)
            r = httpx.post(f"{url}/v1/admin/reload", json={"model_dir": str(target)},
                           headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120)
            during += len(load.single) + len(load.batch) - before
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == read_metadata(target)["version"]
            probe = httpx.post(f"{url}/v1/score", json={"text": "hi"}, headers=scoring)
            assert probe.json()["model_version"] == read_metadata(target)["version"]
            time.sleep(1)
    finally:
        done.set()
        if clients.is_alive():
            clients.join(timeout=120)
        out = stop(proc, log)
    assert load.errors == 0, load.first_errors
    assert len(load.single) > 50 and len(load.batch) > 10 and during > 0
    assert '"event": "model_reloaded"' in out
    assert SCORING_KEY not in out and ADMIN_KEY not in out  # the real process's log holds no key


@pytest.fixture(scope="module")
def corrupt_models(tiny_model, sklearn_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")

    def copy(src, name, change):
        shutil.copytree(src, root / name)
        change(root / name)
        return root / name

    return {
        "garbage weights": copy(tiny_model, "garbage", lambda d: (d / "model.safetensors").write_bytes(os.urandom(4096))),
        "truncated weights": copy(tiny_model, "truncated", lambda d: os.truncate(d / "model.safetensors", 1000)),
        "no weights": copy(tiny_model, "missing", lambda d: (d / "model.safetensors").unlink()),
        "broken tokenizer": copy(tiny_model, "tokenizer", lambda d: (d / "tokenizer.json").write_text("{")),
        "garbage pickle": copy(sklearn_model, "pickle", lambda d: (d / "sklearn.joblib").write_bytes(os.urandom(4096))),
        "broken metadata": copy(sklearn_model, "meta", lambda d: (d / META_FILE).write_text('{"labels": ')),
    }


@pytest.mark.parametrize("fault", ["garbage weights", "truncated weights", "no weights", "broken tokenizer",
                                   "garbage pickle", "broken metadata"])
def test_reload_to_a_corrupt_model_keeps_the_old_one(corrupt_models, sklearn_model, tmp_path, fault):
    old = Predictor.from_pretrained(sklearn_model)
    with TestClient(create_app(Settings(model_dir=tmp_path), predictor=old)) as c:
        r = c.post("/v1/admin/reload", json={"model_dir": str(corrupt_models[fault])})
        assert r.status_code == 422, r.text
        assert r.json()["error_type"] == "bad_model" and f"still serving {old.version}" in r.json()["error"]
        r = c.post("/v1/score", json={"text": "my order never arrived"})
        assert r.status_code == 200 and r.json()["model_version"] == old.version
        assert c.get("/ready").json()["model_version"] == old.version


def test_sigterm_drains_requests_in_flight(tiny_model, tmp_path):
    log = tmp_path / "service.log"
    proc, port = start(tiny_model, log)
    texts, _ = bench_texts(512)
    batch = {"posts": [{"text": t} for t in texts]}  # 512 posts: seconds of work for the transformer
    results: dict[int, httpx.Response | Exception] = {}

    def send(i):
        try:
            results[i] = httpx.post(f"http://127.0.0.1:{port}/v1/score/batch", json=batch, timeout=300)
        except Exception as e:  # noqa: BLE001 (recorded and asserted on below)
            results[i] = e

    senders = [threading.Thread(target=send, args=(i,)) for i in range(3)]
    try:
        wait_ready(port, proc)
        for t in senders:
            t.start()
        time.sleep(1.0)  # all three are in the server: one scoring, two waiting for the model
    finally:
        signalled_with = len(results)
        out = stop(proc, log)
        for t in senders:
            if t.is_alive():
                t.join(timeout=60)
    assert signalled_with < 3, "the requests finished before SIGTERM: make them slower"
    for i in range(3):
        r = results[i]
        assert isinstance(r, httpx.Response) and r.status_code == 200, r
        assert len(r.json()["results"]) == 512
    assert '"event": "stopped", "drained": true' in out


# ---- training output -----------------------------------------------------------------------------------
@functools.cache
def can_mount() -> bool:
    """Root with mount rights in a private mount namespace (CI and the dev machines): real file systems."""
    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


def train_on_tmpfs(small_posts, options: str) -> tuple[int, str, list[str]]:
    """`python -m training train --out DIR/m` where DIR is a fresh tmpfs mounted with `options` in a private
    mount namespace (it goes with the process). The exit code, the output, and what was left in DIR."""
    script = ('mount -t tmpfs -o "$1" tmpfs /mnt || exit 99; '
              '"$2" -m training train --backend sklearn --data "$3" --out /mnt/m; echo "exit=$?"; '
              'echo "left:"; ls -A /mnt')
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "_", options, sys.executable, str(small_posts)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    head, _, left = r.stdout.rpartition("left:\n")
    code = int(head.rsplit("exit=", 1)[1])
    return code, head + r.stderr, left.split()


def test_training_into_a_read_only_file_system(small_posts):
    if not can_mount():
        pytest.skip("needs root and mount rights for a real read-only file system")
    code, out, left = train_on_tmpfs(small_posts, "ro")
    assert code == 2 and "cannot write into /mnt: Read-only file system; nothing was trained" in out
    assert left == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway (see the tmpfs test)")
def test_training_into_a_read_only_folder(small_posts, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        r = CliRunner().invoke(training_cli, ["train", "--backend", "sklearn", "--data", str(small_posts),
                                              "--out", str(folder / "m")])
        assert r.exit_code == 2 and "Permission denied; nothing was trained" in r.output
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_training_onto_a_full_disk(small_posts):
    if not can_mount():
        pytest.skip("needs root and mount rights for a real small file system")
    code, out, left = train_on_tmpfs(small_posts, "size=256k")  # the TF-IDF model alone is about 500 KB
    assert code == 2, out
    assert "stopped before /mnt/m was written: No space left on device" in out
    assert "no partial model folder is left" in out
    assert left == []  # neither the model folder nor its temporary folder


def test_disk_full_midway_leaves_the_old_model(small_posts, sklearn_model, tmp_path, monkeypatch):
    out = tmp_path / "m"
    shutil.copytree(sklearn_model, out)
    before = json.loads((out / META_FILE).read_text())["version"]

    def save_half(models, folder):
        (folder / "sklearn.joblib").write_bytes(b"\x80\x04half a pickle")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder / "sklearn.joblib"))

    monkeypatch.setattr("training.baseline.save", save_half)
    r = CliRunner().invoke(training_cli, ["train", "--backend", "sklearn", "--data", str(small_posts),
                                          "--out", str(out), "--overwrite"])
    assert r.exit_code == 2 and f"stopped before {out} was written: No space left on device" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left
    assert Predictor.from_pretrained(out).version == before  # the old model, whole


def test_overwrite_swaps_whole_folders(small_posts, sklearn_model, tmp_path):
    out = tmp_path / "m"
    shutil.copytree(sklearn_model, out)
    (out / "stale.txt").write_text("from the old model")
    r = CliRunner().invoke(training_cli, ["train", "--backend", "sklearn", "--data", str(small_posts),
                                          "--out", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (out / "stale.txt").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert Predictor.from_pretrained(out).version != Predictor.from_pretrained(sklearn_model).version
