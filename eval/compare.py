"""`python -m eval compare`: two models on the same posts, with paired bootstrap intervals of the difference."""

from pathlib import Path

import numpy as np

from model import Predictor
from training.data import Columns, load_posts

from .report import figures, predict_frame


def compare(model_a: str | Path, model_b: str | Path, data: str | Path, columns: Columns | None = None,
            rounds: int = 1000, seed: int = 0) -> dict:
    df = load_posts([data], columns)
    pa, pb = Predictor.from_pretrained(model_a), Predictor.from_pretrained(model_b)
    fa, fb = predict_frame(pa, df), predict_frame(pb, df)
    ha, hb = figures(fa, pa.labels)["headline"], figures(fb, pb.labels)["headline"]
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {k: [] for k in ha if k in hb}
    for _ in range(rounds):
        idx = rng.integers(0, len(df), len(df))
        a, b = figures(fa.iloc[idx], pa.labels)["headline"], figures(fb.iloc[idx], pb.labels)["headline"]
        for k in diffs:
            diffs[k].append(b[k] - a[k])
    return {
        "a": {"dir": str(model_a), "version": pa.version}, "b": {"dir": str(model_b), "version": pb.version},
        "data": str(data), "rows": len(df),
        "metrics": {k: {"a": ha[k], "b": hb[k], "diff": hb[k] - ha[k],
                        "interval": [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]}
                    for k, v in diffs.items()},
    }


def gate(result: dict, rules: list[str]) -> list[str]:
    """Failures of `METRIC:TOLERANCE` rules: B may be worse than A by at most TOLERANCE."""
    failures = []
    for rule in rules:
        metric, _, tol = rule.partition(":")
        if metric not in result["metrics"]:
            raise ValueError(f"--fail-if-worse {rule!r}: unknown metric; choose from {sorted(result['metrics'])}")
        try:
            tolerance = float(tol or 0)
        except ValueError as e:
            raise ValueError(f"--fail-if-worse {rule!r}: tolerance must be a number, e.g. {metric}:0.01") from e
        m = result["metrics"][metric]
        if m["diff"] < -tolerance:
            failures.append(f"{metric}: B {m['b']:.3f} is worse than A {m['a']:.3f} by {-m['diff']:.3f} "
                            f"(tolerance {tolerance})")
    return failures


def print_comparison(result: dict) -> None:
    print(f"A: {result['a']['version']}\nB: {result['b']['version']}\non {result['data']} ({result['rows']} posts)")
    print(f"{'metric':<22}{'A':>8}{'B':>8}{'B-A':>8}   95% interval of B-A")
    for k, m in result["metrics"].items():
        print(f"{k:<22}{m['a']:>8.3f}{m['b']:>8.3f}{m['diff']:>+8.3f}   {m['interval'][0]:+.3f} .. {m['interval'][1]:+.3f}")
