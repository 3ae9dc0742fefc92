"""The data check on the bundled posts and on broken files."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli import app
from training.data import Columns, DataError, check_posts, load_posts, near_duplicates

from .conftest import POSTS


def test_bundled_posts_pass_the_check():
    report = check_posts(load_posts([POSTS]), min_per_class=500)
    assert report.ok, report.errors
    c = report.counts
    assert c["rows"] >= 4000
    assert set(c["intent"]) == {"complaint", "question", "praise", "sales_lead", "other"}
    assert min(c["intent"].values()) >= 500
    assert len([d for d in c["domain"] if d != "general"]) >= 15
    assert c["urgency"]["2"] >= 300 and c["urgency"]["3"] >= 150
    assert c["with_also"] >= 0.15 * c["rows"]
    assert 0.13 <= c["split"]["test"] / c["rows"] <= 0.17


def test_bundled_complaints_cover_every_urgency_level():
    df = pd.read_csv(POSTS, keep_default_na=False)
    assert set(df.loc[df.intent == "complaint", "urgency"].astype(int)) == {0, 1, 2, 3}


def test_bundled_posts_have_few_near_duplicates():
    texts = pd.read_csv(POSTS, keep_default_na=False)["text"].tolist()
    pairs = near_duplicates(texts)
    n = len(texts)
    assert len(pairs) / (n * (n - 1) / 2) < 0.01
    assert len({i for a, b, _ in pairs for i in (a, b)}) / n < 0.01


def test_near_duplicates_ignore_handles_but_catch_rewrites():
    texts = ["@a my parcel never came and nobody answers the phone at all",
             "@b my parcel never came and nobody answers the phone at all",
             "a completely different post about a train running late today"]
    assert [(a, b) for a, b, _ in near_duplicates(texts)] == [(0, 1)]


def write(tmp_path, rows, name="bad.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_check_names_each_bad_row_and_the_fix(tmp_path):
    rows = [{"text": f"post number {i}", "intent": "question", "urgency": 1} for i in range(12)]
    rows += [{"text": f"thanks {i}", "intent": "praise", "urgency": 0} for i in range(12)]
    rows[3]["urgency"] = 7
    rows[5]["text"] = ""
    rows[6]["text"] = "POST number 0"
    rows[7]["intent"] = "Bad Label"
    report = check_posts(load_posts([write(tmp_path, rows)]))
    text = "\n".join(report.errors)
    assert "urgency must be 0, 1, 2, 3 or empty (got '7')" in text and "bad.csv row 4" in text
    assert "empty text" in text and "bad.csv row 6" in text
    assert "duplicate text" in text and "row 7 (same as bad.csv row 1)" in text
    assert "lower_snake_case" in text and "row 8" in text


def test_check_requires_examples_per_class(tmp_path):
    rows = [{"text": f"q {i}", "intent": "question"} for i in range(12)]
    rows += [{"text": f"p {i}", "intent": "praise"} for i in range(3)]
    report = check_posts(load_posts([write(tmp_path, rows)]))
    assert any("intent 'praise' has 3 training rows" in e for e in report.errors)


def test_column_mapping_and_formats(tmp_path):
    rows = [{"body": f"post {i}", "label": "question" if i % 2 else "praise", "prio": ""} for i in range(30)]
    csv = write(tmp_path, rows, "raw.csv")
    jsonl = tmp_path / "raw.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    parquet = tmp_path / "raw.parquet"
    pd.DataFrame(rows).to_parquet(parquet)
    for path in (csv, jsonl, parquet):
        df = load_posts([path], Columns(text="body", intent="label", urgency="prio"))
        assert list(df["text"][:2]) == ["post 0", "post 1"]
        assert check_posts(df).ok
    with pytest.raises(DataError, match="missing column"):
        load_posts([csv])


def test_null_like_posts_stay_text(tmp_path):
    path = write(tmp_path, [{"text": "NA", "intent": "other"}, {"text": "null", "intent": "other"}])
    assert load_posts([path])["text"].tolist() == ["NA", "null"]


def test_check_command_exit_codes(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["check", str(POSTS)])
    assert ok.exit_code == 0 and "pass the check" in ok.output
    bad = write(tmp_path, [{"text": "", "intent": "other"}])
    result = runner.invoke(app, ["check", str(bad)])
    assert result.exit_code == 1
