"""`python -m eval report`: how a model does on a labeled file, with intervals, slices and plots."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from model import Predictor
from model.calibration import expected_calibration_error, reliability
from training.data import Columns, load_posts, parse_urgency

from .metrics import headline, intent_metrics, urgency_metrics


def predict_frame(predictor: Predictor, df: pd.DataFrame) -> pd.DataFrame:
    """The file's rows with the model's intent, urgency, intent probabilities and top probability beside them."""
    probs, urgency = predictor.predict_proba(df["text"].tolist())
    preds = predictor.results(probs, urgency)
    out = df.copy()
    out["probs"] = list(probs)
    out["pred_intent"] = [p["intent"] for p in preds]
    out["pred_urgency"] = [p["urgency"] for p in preds]
    out["confidence"] = [max(p["scores"].values()) for p in preds]
    out["true_urgency"] = [parse_urgency(u) for u in df["urgency"]]
    return out


def figures(frame: pd.DataFrame, labels: list[str]) -> dict:
    intent = intent_metrics(frame["intent"].tolist(), frame["pred_intent"].tolist(), labels)
    known = frame["true_urgency"].notna()
    urgency = urgency_metrics(frame.loc[known, "true_urgency"].astype(int), frame.loc[known, "pred_urgency"])
    return {"headline": headline(intent, urgency), "intent": intent, "urgency": urgency}


def bootstrap(frame: pd.DataFrame, labels: list[str], rounds: int = 1000, seed: int = 0) -> dict:
    """95% percentile intervals of the headline figures over resampled rows."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        sample = frame.iloc[rng.integers(0, len(frame), len(frame))]
        for k, v in figures(sample, labels)["headline"].items():
            draws.setdefault(k, []).append(v)
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] for k, v in draws.items()}


def calibration(frame: pd.DataFrame, labels: list[str]) -> dict:
    y = frame["intent"].map({label: i for i, label in enumerate(labels)})
    known = y.notna()
    probs = np.stack(frame.loc[known, "probs"].to_list())
    y = y[known].astype(int).to_numpy()
    return {"ece": expected_calibration_error(probs, y), "bins": reliability(probs, y, bins=10)}


def slices(frame: pd.DataFrame, labels: list[str]) -> dict:
    out = {}
    for col in ("domain", "channel"):
        if col in frame.columns and frame[col].nunique() > 1:
            out[col] = {str(value): {"n": len(g), **figures(g, labels)["headline"]}
                        for value, g in frame.groupby(col) if len(g) >= 10}
    return out


def plot(report: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    mats = [("intent_confusion.png", "Intent: true (rows) vs predicted (columns)",
             report["intent"]["confusion"]["labels"], report["intent"]["confusion"]["matrix"])]
    if report["urgency"]:
        mats.append(("urgency_confusion.png", "Urgency: true (rows) vs predicted (columns)",
                     ["0 low", "1 normal", "2 high", "3 critical"], report["urgency"]["confusion"]))
    for name, title, labels, matrix in mats:
        m = np.array(matrix)
        fig, ax = plt.subplots(figsize=(1.3 * len(labels) + 2.5, 1.1 * len(labels) + 2))
        ax.imshow(m / np.maximum(m.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                share = m[i, j] / max(m[i].sum(), 1)
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=11,
                        color="white" if share > 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    bins = report["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    for b in bins:
        ax.annotate(str(b["n"]), (b["confidence"], b["accuracy"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top intent probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability diagram (ECE {report['calibration']['ece']:.3f}; labels: posts per bin)", fontsize=9)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)
    plt.close(fig)
    return written + ["reliability.png"]


def markdown(report: dict) -> str:
    h, ci = report["headline"], report["intervals"]
    lines = [f"# Evaluation of {report['model']['version']}", "",
             f"Data: `{report['data']}` ({report['rows']} posts). Backend: {report['model']['backend']}.", "",
             "| metric | value | 95% interval |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | {ci[k][0]:.3f} - {ci[k][1]:.3f} |" for k, v in h.items()]
    lines += ["", "## Intents", "", "| intent | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
              for k, v in report["intent"]["per_class"].items()]
    if report["urgency"]:
        u = report["urgency"]
        lines += ["", "## Urgency", "", f"Quadratic weighted kappa {u['qwk']:.3f}, mean absolute error {u['mae']:.3f}, "
                  f"levels 2-3 recall {u['high_recall']:.3f} and precision {u['high_precision']:.3f}."]
    lines += ["", "## Calibration", "", f"Expected calibration error {report['calibration']['ece']:.3f}."]
    if report.get("behaviour"):
        b = report["behaviour"]
        lines += ["", "## Behaviour tests", "", f"{b['passed']} of {b['total']} pass."]
        lines += [f"- FAIL {f}" for f in b["failures"]]
    for col, groups in report["slices"].items():
        lines += ["", f"## By {col}", "", "| " + col + " | n | intent macro-F1 | complaint F1 |", "|---|---|---|---|"]
        lines += [f"| {k} | {g['n']} | {g['intent_macro_f1']:.3f} | {g.get('complaint_f1', float('nan')):.3f} |"
                  for k, g in groups.items()]
    lines += ["", "![intent confusion](intent_confusion.png)", "![urgency confusion](urgency_confusion.png)",
              "![reliability](reliability.png)", ""]
    return "\n".join(lines)


def run_report(model_dir: str | Path, data: str | Path, out: str | Path, columns: Columns | None = None,
               backend: str | None = None, rounds: int = 1000, behaviour: bool = True) -> dict:
    predictor = Predictor.from_pretrained(model_dir, backend=backend)
    df = load_posts([data], columns)
    frame = predict_frame(predictor, df)
    result = figures(frame, predictor.labels)
    report = {
        "model": {"dir": str(model_dir), "version": predictor.version, "backend": predictor.backend_name},
        "data": str(data), "rows": len(frame), **result,
        "intervals": bootstrap(frame, predictor.labels, rounds),
        "calibration": calibration(frame, predictor.labels),
        "slices": slices(frame, predictor.labels),
    }
    if behaviour:
        from .behaviour import run_behaviour

        report["behaviour"] = run_behaviour(predictor)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    report["plots"] = plot(report, out)
    (out / "report.md").write_text(markdown(report))
    frame[["text", "intent", "pred_intent", "true_urgency", "pred_urgency", "confidence"]].to_csv(
        out / "predictions.csv", index=False)
    return report


def print_table(report: dict) -> None:
    print(f"model {report['model']['version']} on {report['data']} ({report['rows']} posts)")
    print(f"{'metric':<22}{'value':>8}   95% interval")
    for k, v in report["headline"].items():
        lo, hi = report["intervals"][k]
        print(f"{k:<22}{v:>8.3f}   {lo:.3f} - {hi:.3f}")
    print(f"{'intent ECE':<22}{report['calibration']['ece']:>8.3f}")
    print("per intent F1: " + ", ".join(f"{k} {v['f1']:.3f}" for k, v in report["intent"]["per_class"].items()))
    c = report["intent"]["confusion"]
    print("intent confusion (rows true, columns predicted): " + " ".join(c["labels"]))
    for label, row in zip(c["labels"], c["matrix"]):
        print(f"  {label:<12}" + "".join(f"{x:>6}" for x in row))
    if report["urgency"]:
        print(f"urgency MAE {report['urgency']['mae']:.3f}, levels 2-3 precision {report['urgency']['high_precision']:.3f}")
    if report.get("behaviour"):
        print(f"behaviour tests: {report['behaviour']['passed']} of {report['behaviour']['total']} pass")
