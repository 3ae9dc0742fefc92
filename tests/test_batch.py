"""Batch scoring: fixed blocks, the API's result fields, a local Ray run, and a resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from model import Predictor, read_metadata
from service.app import create_app
from service.batch import (
    BatchError,
    Columns,
    Options,
    check_posts,
    count_rows,
    iter_blocks,
    plan,
    run,
    score_table,
)
from service.routing import Rules
from service.schemas import Score
from service.settings import Settings

from .conftest import POSTS, ROOT

SCORE_FIELDS = list(Score.model_fields)


def write_inputs(folder, n: int) -> list[str]:
    """n bundled posts with ids over a CSV, a JSON Lines file (nested author) and a Parquet file (flat
    engagement columns) in a folder tree; returns the ids."""
    df = pd.read_csv(POSTS, keep_default_na=False).head(n)[["text"]]
    df.insert(0, "id", [f"p{i}" for i in range(len(df))])
    a, b = len(df) // 3, 2 * len(df) // 3
    (folder / "sub").mkdir(parents=True)
    df.iloc[:a].to_csv(folder / "a.csv", index=False)
    df.iloc[a:b].assign(author=[{"followers": 20_000, "verified": False}] * (b - a)).to_json(
        folder / "sub" / "b.jsonl", orient="records", lines=True)
    df.iloc[b:].assign(shares=5, replies=30).to_parquet(folder / "c.parquet")
    return df["id"].tolist()


def read_output(folder) -> pd.DataFrame:
    return pq.read_table(folder).to_pandas()


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_blocks_are_fixed_row_ranges(tmp_path, suffix):
    df = pd.DataFrame({"id": [str(i) for i in range(1050)], "text": [f"post {i}" for i in range(1050)]})
    path = tmp_path / f"in.{suffix}"
    {"csv": lambda: df.to_csv(path, index=False), "parquet": lambda: df.to_parquet(path),
     "jsonl": lambda: df.to_json(path, orient="records", lines=True)}[suffix]()
    blocks = list(iter_blocks(path, 200, Columns()))
    assert [k for k, _ in blocks] == [0, 1, 2, 3, 4, 5]
    assert [len(f) for _, f in blocks] == [200] * 5 + [50]
    assert [f.index[0] for _, f in blocks] == [0, 200, 400, 600, 800, 1000]
    assert blocks[5][1]["text"].iloc[-1] == "post 1049"
    assert count_rows(path, Columns()) == 1050


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_long_integer_ids_with_gaps_stay_exact(tmp_path, suffix):
    df = pd.DataFrame({"id": pd.array([899515989649260544, None], dtype="Int64"), "text": ["a", "b"]})
    path = tmp_path / f"in.{suffix}"
    df.to_parquet(path) if suffix == "parquet" else df.to_json(path, orient="records", lines=True)
    frame = next(iter_blocks(path, 10, Columns()))[1]
    assert check_posts(frame, Columns(), "f", "p", 2).column("id").to_pylist() == ["899515989649260544", None]


def test_missing_text_column_names_the_fix(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"body": ["hi"]}).to_csv(path, index=False)
    with pytest.raises(BatchError, match="no 'text' column.*--text-column"):
        count_rows(path, Columns())
    assert count_rows(path, Columns(text="body")) == 1


@pytest.fixture(scope="module")
def sk(sklearn_model):
    return Predictor.from_pretrained(sklearn_model)


def test_batch_fields_are_the_apis(sk, tmp_path):
    """The same posts through the HTTP API and through the batch path give identical result fields."""
    posts = [{"id": "1", "text": "@SkyFly my flight is cancelled and nobody answers", "author": {"followers": 25_000}},
             {"id": "2", "text": "how do I reset my password?", "engagement": {"likes": 1, "shares": 150, "replies": 60}},
             {"id": "3", "text": "love the new app", "author": {"verified": True}},
             {"text": "what does the family plan cost?"}]
    with TestClient(create_app(Settings(model_dir=tmp_path), predictor=sk)) as client:
        api = client.post("/v1/score/batch", json={"posts": posts}).json()["results"]
    frame = pd.DataFrame(posts)
    table = score_table(check_posts(frame, Columns(), "in.jsonl", "part-in.jsonl-00000.parquet", len(frame)),
                        sk, Rules.load())
    assert table.select(SCORE_FIELDS).to_pylist() == api
    assert table.column("row").to_pylist() == [0, 1, 2, 3]


def test_invalid_posts_keep_their_place_with_the_apis_message(sk):
    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["fine", "   ", "x" * 10_001]})
    rows = score_table(check_posts(frame, Columns(), "f.csv", "p", 3), sk, Rules.load()).to_pylist()
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["error"] is None and rows[0]["intent"] in sk.labels
    assert rows[1]["error"] == "text: Value error, text is blank" and rows[1]["intent"] is None
    assert rows[2]["error"].startswith("text: String should have at most 10000 characters")


def test_rerun_with_other_settings_is_refused(sklearn_model, tmp_path):
    ids = write_inputs(tmp_path / "in", 300)
    version = read_metadata(sklearn_model)["version"]
    first = plan(tmp_path / "in", tmp_path / "out", Columns(), 100, version, False)
    assert [len(f.pending) for f in first] == [1, 1, 1] and sum(f.rows for f in first) == len(ids)
    with pytest.raises(BatchError, match="block_rows 100, this run has 50"):
        plan(tmp_path / "in", tmp_path / "out", Columns(), 50, version, False)
    with pytest.raises(BatchError, match="model_version"):
        plan(tmp_path / "in", tmp_path / "out", Columns(), 100, "other-model", False)
    pd.DataFrame({"id": ["x"], "text": ["new"]}).to_csv(tmp_path / "in" / "a.csv", index=False)
    with pytest.raises(BatchError, match="had 100 rows .* has 1 now"):
        plan(tmp_path / "in", tmp_path / "out", Columns(), 100, version, False)


@pytest.mark.slow
def test_ray_scores_every_post_once(sklearn_model, tmp_path):
    ids = write_inputs(tmp_path / "in", 3000)
    options = Options(model_dir=sklearn_model, routing=Settings().routing, num_cpus=2, actors=1, block_rows=500,
                      include_text=True, progress=False)
    summary = run(tmp_path / "in", tmp_path / "out", options, log=lambda _: None)
    assert summary["written_blocks"] == summary["blocks"] == 6 and summary["errors"] == 0
    out = read_output(tmp_path / "out")
    assert sorted(out["id"]) == sorted(ids)
    for row in pq.read_table(tmp_path / "out").select(SCORE_FIELDS).to_pylist():
        Score.model_validate(row)
    # Metadata escalates the intents the rules name, read from nested (JSON Lines) and flat (Parquet) columns.
    escalated = out[out["intent"].isin(Rules.load().escalation.applies_to)]
    reasons = escalated.set_index("source")["urgency"].map(lambda u: list(u["reasons"]))
    assert reasons.loc["sub_b.jsonl"].map(lambda r: "author reach: 20k followers" in r).all()
    assert reasons.loc["c.parquet"].map(lambda r: "public visibility: 35 shares and replies" in r).all()
    assert not reasons.loc["a.csv"].map(len).gt(1).any()
    assert (out["text"] == pd.read_csv(POSTS, keep_default_na=False).head(3000).set_index(
        pd.Index([f"p{i}" for i in range(3000)])).loc[out["id"], "text"].to_numpy()).all()
    again = run(tmp_path / "in", tmp_path / "out", options, log=lambda _: None)
    assert again["skipped_blocks"] == 6 and again["written_blocks"] == 0


@pytest.mark.slow
def test_killed_run_resumes_without_loss_or_duplicates(tiny_model, tmp_path):
    ids = write_inputs(tmp_path / "in", 2000)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "service.batch", "--input", str(tmp_path / "in"), "--output", str(out),
               "--model-dir", str(tiny_model), "--num-cpus", "2", "--actors", "1", "--block-rows", "100",
               "--batch-size", "50", "--no-progress"]
    # A session of its own, so that Ray's processes can be ended with the run.
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while not list(out.glob("part-*.parquet")) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    first = {p.name for p in out.glob("part-*.parquet")}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < len(first) < summary["blocks"] == 21, "the first run must be killed midway"
    assert summary["skipped_blocks"] == len(first) and summary["written_blocks"] == 21 - len(first)
    scored = read_output(out)
    assert len(scored) == len(ids) and sorted(scored["id"]) == sorted(ids)  # every post exactly once
    assert not list(out.glob(".*.tmp"))
    # The blocks of the killed run were kept, not written again.
    assert all(p.stat().st_mtime < (out / "_batch.json").stat().st_mtime for p in out.iterdir() if p.name in first)
