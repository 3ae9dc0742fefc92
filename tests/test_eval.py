"""Evaluation commands: the report's files, the release gate, behaviour tests of the default model."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from eval.behaviour import check_case, load_cases
from eval.cli import app

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_report_writes_files(sklearn_model, small_posts, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--model", str(sklearn_model), "--data", str(small_posts),
                                 "--out", str(out), "--rounds", "50"])
    assert result.exit_code == 0, result.output
    assert "intent_macro_f1" in result.output and "95% interval" in result.output
    for name in ("report.json", "report.md", "predictions.csv", "intent_confusion.png", "urgency_confusion.png",
                 "reliability.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    lo, hi = report["intervals"]["intent_macro_f1"]
    assert lo <= report["headline"]["intent_macro_f1"] <= hi
    assert set(report["slices"]) == {"domain", "channel"}
    assert 0 <= report["calibration"]["ece"] <= 1 and report["urgency"]["confusion"]


def test_compare_gate_passes_and_fails(sklearn_model, tiny_model, small_posts):
    # The same model against itself: no difference, the gate passes.
    same = runner.invoke(app, ["compare", "--model", str(sklearn_model), "--model", str(sklearn_model),
                               "--data", str(small_posts), "--rounds", "20",
                               "--fail-if-worse", "intent_macro_f1:0.0"])
    assert same.exit_code == 0, same.output
    assert "gate passed" in same.output
    # On its own training posts the TF-IDF model is near perfect; one short epoch of the transformer is not.
    worse = runner.invoke(app, ["compare", "--model", str(sklearn_model), "--model", str(tiny_model),
                                "--data", str(small_posts), "--rounds", "20",
                                "--fail-if-worse", "intent_macro_f1:0.01"])
    assert worse.exit_code == 1, worse.output
    assert "worse: intent_macro_f1" in worse.output
    unknown = runner.invoke(app, ["compare", "--model", str(sklearn_model), "--model", str(sklearn_model),
                                  "--data", str(small_posts), "--rounds", "5", "--fail-if-worse", "nope:0.1"])
    assert unknown.exit_code == 2 and "unknown metric" in unknown.output


CASES = load_cases()


@pytest.fixture(scope="module")
def default_predictor(default_model):
    from model import Predictor

    return Predictor.from_pretrained(default_model)


@pytest.mark.parametrize("case", CASES, ids=[c["name"][:60] for c in CASES])
def test_default_model_behaviour(default_predictor, case):
    assert check_case(case, default_predictor.predict) is None


def test_unseen_complaints_leaves_out_the_dev_tweets(sklearn_model, tmp_path):
    from eval.acl2019 import unseen_complaints

    acl = pd.DataFrame({"id": range(6), "complaint": [1, 0, 1, 0, 1, 0],
                        "text": ["my order never came", "lol ok", "app crashed again", "nice day",
                                 "refund still missing", "watching the game"]})
    acl.to_csv(tmp_path / "acl.csv", index=False)
    acl.iloc[:2].to_csv(tmp_path / "dev.csv", index=False)
    [row] = unseen_complaints([sklearn_model], tmp_path / "acl.csv", tmp_path / "dev.csv")
    assert row["tweets"] == 4 and 0 <= row["complaint_f1"] <= 1
