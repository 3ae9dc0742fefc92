"""Behaviour tests of a trained model: minimum cases, invariance and direction (eval/behaviour.yaml)."""

from pathlib import Path

import yaml

CASES = Path(__file__).with_name("behaviour.yaml")


def load_cases(path: Path = CASES) -> list[dict]:
    """Every case as one dict: kind, name, texts and what is expected."""
    spec = yaml.safe_load(path.read_text())
    cases = []
    for intent, texts in spec["minimum"].items():
        cases += [{"kind": "minimum", "name": f"minimum {intent}: {t}", "text": t, "intent": intent}
                  for t in texts]
    for group in spec["invariance"]:
        cases += [{"kind": "invariance", "name": f"invariance: {v}", "base": group["base"], "text": v}
                  for v in group["variants"]]
    for d in spec["direction"]:
        cases.append({"kind": "direction", "name": f"urgency {d['expect']}: {d['variant']}",
                      "base": d["base"], "text": d["variant"], "expect": d["expect"]})
    return cases


def check_case(case: dict, predict) -> str | None:
    """None when the case passes, else what went wrong."""
    got = predict([case["text"]])[0]
    if case["kind"] == "minimum":
        return None if got["intent"] == case["intent"] else f"expected {case['intent']}, got {got['intent']}"
    base = predict([case["base"]])[0]
    if case["kind"] == "invariance":
        return None if got["intent"] == base["intent"] else f"intent changed: {base['intent']} -> {got['intent']}"
    up = got["urgency_score"] > base["urgency_score"]
    if up == (case["expect"] == "up"):
        return None
    return f"urgency score {base['urgency_score']:.3f} -> {got['urgency_score']:.3f}, expected {case['expect']}"


def run_behaviour(predictor) -> dict:
    cases = load_cases()
    failures = []
    for case in cases:
        problem = check_case(case, predictor.predict)
        if problem:
            failures.append(f"{case['name']}: {problem}")
    return {"total": len(cases), "passed": len(cases) - len(failures), "failures": failures}
