"""One labeled file (or several) in, one versioned model folder out."""

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from eval.metrics import headline, intent_metrics, urgency_metrics
from model import META_FILE, URGENCY_NAMES, Predictor
from model.backends import load_backend
from model.calibration import expected_calibration_error, fit_temperature, fit_urgency_cuts, softmax
from model.text import normalize

from . import baseline
from .args import TrainArgs
from .data import Columns, DataError, check_posts, load_posts, parse_urgency


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare(args: TrainArgs) -> tuple[pd.DataFrame, list[str]]:
    """Load and check the data; stop before training when anything is wrong."""
    df = load_posts(args.data, Columns(args.text_column, args.intent_column, args.urgency_column))
    report = check_posts(df, args.min_per_class)
    for w in report.warnings:
        print(f"warning: {w}")
    if not report.ok:
        raise DataError("the training data has problems:\n- " + "\n- ".join(report.errors))
    df["text"] = df["text"].map(normalize)
    labels = sorted(df["intent"].unique())
    df["label"] = df["intent"].map({label: i for i, label in enumerate(labels)})
    df["urgency_id"] = df["urgency"].map(lambda v: -1 if parse_urgency(v) is None else parse_urgency(v))
    return df, labels


def split(df: pd.DataFrame, args: TrainArgs):
    """Train, validation (stratified by intent, carved from train) and test (rows marked test)."""
    test = df[df["split"] == "test"]
    pool = df[df["split"] != "test"]
    if (pool["split"] == "validation").any():
        return pool[pool["split"] == "train"], pool[pool["split"] == "validation"], test
    train, val = train_test_split(pool, test_size=args.validation_fraction,
                                  stratify=pool["label"], random_state=args.seed)
    return train, val, test


def evaluate(predictor: Predictor, frame: pd.DataFrame) -> dict:
    if frame.empty:
        return {}
    preds = predictor.predict(frame["text"].tolist())
    intent = intent_metrics(frame["intent"].tolist(), [p["intent"] for p in preds], predictor.labels)
    known = frame["urgency_id"].to_numpy() >= 0
    urgency = urgency_metrics(frame["urgency_id"].to_numpy()[known],
                              np.array([p["urgency"] for p in preds])[known])
    return {"headline": headline(intent, urgency), "intent": intent, "urgency": urgency}


def _baseline_f1(train, val, args) -> float:
    intent, _ = baseline.fit(train["text"].tolist(), train["intent"].tolist(),
                             train["urgency_id"].to_numpy(), args.seed)
    return intent_metrics(val["intent"].tolist(), intent.predict(val["text"].tolist()).tolist(),
                          sorted(train["intent"].unique()))["macro_f1"]


def train(args: TrainArgs) -> Path:
    """Train, calibrate, evaluate, and move the finished folder into place."""
    started = time.time()
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    df, labels = prepare(args)
    train_df, val_df, test_df = split(df, args)
    print(f"rows: {len(train_df)} train, {len(val_df)} validation, {len(test_df)} test; "
          f"intents: {', '.join(labels)}")
    try:  # before training: a folder we cannot write should not cost ten minutes first
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as e:
        raise OSError(f"cannot write into {out.parent}: {e.strerror or e}; nothing was trained") from e
    try:
        if args.backend == "sklearn":
            models = baseline.fit(train_df["text"].tolist(), train_df["intent"].tolist(),
                                  train_df["urgency_id"].to_numpy(), args.seed)
            baseline.save(models, tmp)
            backend = "sklearn"
        else:
            from .transformer import fit_transformer

            fit_transformer(args, labels, train_df, val_df, tmp)
            backend = "torch"
        # Raw logits through the same backend that will serve the folder.
        val_logits, val_urgency = load_backend(backend, tmp)(val_df["text"].tolist())
        val_y = val_df["label"].to_numpy()
        temperature = fit_temperature(val_logits, val_y) if backend == "torch" else 1.0
        known = val_df["urgency_id"].to_numpy() >= 0
        cuts = fit_urgency_cuts(val_urgency[known], val_df["urgency_id"].to_numpy()[known], args.urgency_recall)
        calibration = {
            "temperature": temperature, "urgency_cuts": cuts,
            "ece_before": expected_calibration_error(softmax(val_logits), val_y),
            "ece_after": expected_calibration_error(softmax(val_logits, temperature), val_y),
        }
        meta = {
            "name": out.name, "backend": backend, "labels": labels, "urgency_levels": URGENCY_NAMES,
            # Serving default; `auto` is bf16 where the CPU runs it faster than fp32 (99.8% the fp32 answers).
            "inference": {"backend": backend, "precision": "auto" if backend == "torch" else "fp32",
                          "cascade_margin": 0.0},
            "temperature": temperature, "urgency_cuts": cuts, "thresholds": args.thresholds,
            "also_threshold": args.also_threshold, "max_length": args.max_length,
        }
        (tmp / META_FILE).write_text(json.dumps({**meta, "version": "pending"}))
        predictor = Predictor.from_pretrained(tmp)
        metrics = {"validation": evaluate(predictor, val_df), "calibration": calibration}
        if backend == "sklearn":
            # Nothing stops early or is tuned on the validation rows here: once they have given the
            # validation figures, the final model learns from them too.
            both = pd.concat([train_df, val_df])
            baseline.save(baseline.fit(both["text"].tolist(), both["intent"].tolist(),
                                       both["urgency_id"].to_numpy(), args.seed), tmp)
            predictor = Predictor.from_pretrained(tmp)
        metrics["test"] = evaluate(predictor, test_df)
        metrics["validation"]["baseline_macro_f1"] = (
            metrics["validation"]["headline"]["intent_macro_f1"] if backend == "sklearn"
            else _baseline_f1(train_df, val_df, args))
        created = datetime.now(UTC)
        digest = hashlib.sha256(json.dumps([args.to_dict(), [sha256(p) for p in args.data]],
                                           sort_keys=True).encode()).hexdigest()[:8]
        meta.update({
            "version": f"{out.name}-{created:%Y%m%d%H%M%S}-{digest}",
            "created": created.isoformat(timespec="seconds"),
            "base_model": args.init_from or args.base_model if backend == "torch" else None,
            "training_args": args.to_dict(),
            "data": [{"path": str(p), "sha256": sha256(p),
                      "rows": int((df["source_file"] == str(p)).sum())} for p in args.data],
            "rows": {"train": len(train_df), "validation": len(val_df), "test": len(test_df),
                     # the sklearn baseline's final fit also learns from the validation rows
                     "final_fit": len(train_df) + (len(val_df) if backend == "sklearn" else 0)},
            "metrics": metrics,
            "train_seconds": round(time.time() - started, 1),
            "versions": _versions(),
        })
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        (tmp / "README.md").write_text(model_card(meta))
        if args.export_onnx and backend == "torch":
            from .onnx_export import calibration_sample, export_onnx

            # Served by OpenVINO from then on: the fastest backend measured, in bf16 where that is fast (docs/results.md).
            export_onnx(tmp, serve=("openvino", "auto", 0.0),
                        calibration=calibration_sample(pd.concat([train_df, val_df])["text"].tolist()))
        move_into_place(tmp, out)
    except OSError as e:  # a full disk, a folder made read-only meanwhile, ...
        shutil.rmtree(tmp, ignore_errors=True)
        where = f" ({e.filename})" if e.filename else ""
        raise OSError(f"stopped before {out} was written: {e.strerror or e}{where}; "
                      "no partial model folder is left") from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _print_summary(meta)
    return out


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder to `out`. An old `out` is renamed aside and deleted only afterwards: a
    service reloading `out` meanwhile finds the old model, the new one, or briefly nothing, never half of one."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _versions() -> dict:
    import sklearn
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "scikit-learn": sklearn.__version__}


def _print_summary(meta: dict) -> None:
    m = meta["metrics"]
    val = m["validation"]["headline"]
    print(f"\nmodel {meta['version']} ({meta['backend']}) written in {meta['train_seconds']:.0f} s")
    print(f"validation intent macro-F1: {meta['backend']} {val['intent_macro_f1']:.3f} | "
          f"tf-idf baseline {m['validation']['baseline_macro_f1']:.3f}")
    print(f"calibration ECE: {m['calibration']['ece_before']:.3f} before, {m['calibration']['ece_after']:.3f} after "
          f"(temperature {m['calibration']['temperature']:.2f}); "
          f"cut into urgency 2-3: {m['calibration']['urgency_cuts'][1]:.2f}")
    if m["test"]:
        print("test split: " + ", ".join(f"{k} {v:.3f}" for k, v in m["test"]["headline"].items()))


def model_card(meta: dict) -> str:
    m = meta["metrics"]
    rows = []
    for split_name in ("validation", "test"):
        for k, v in m[split_name].get("headline", {}).items():
            rows.append(f"| {split_name} | {k} | {v:.3f} |")
    refit = (" (the final fit learned from train and validation; the validation figures are from the fit on "
             "train alone)") if meta["backend"] == "sklearn" else ""
    share = meta["training_args"].get("pretrained_share", 0)
    mixed = f", with {share:.0%} of the starting encoder's weights mixed back in after training" if share else ""
    data = "\n".join(f"- `{d['path']}`: {d['rows']} rows, sha256 `{d['sha256'][:16]}…`" for d in meta["data"])
    return f"""---
library_name: transformers
pipeline_tag: text-classification
tags: [social-triage]
---
# {meta['name']} ({meta['version']})

Social Triage classifier: intent ({', '.join(meta['labels'])}) and urgency (0-3) of social media posts,
from one forward pass. Backend: `{meta['backend']}`. Base model: `{meta['base_model']}`{mixed}.
Created {meta['created']} in {meta['train_seconds']:.0f} s.

## Evaluation
| split | metric | value |
|---|---|---|
{chr(10).join(rows)}

TF-IDF baseline, validation intent macro-F1: {m['validation']['baseline_macro_f1']:.3f}.
Calibration: temperature {m['calibration']['temperature']:.2f}, expected calibration error
{m['calibration']['ece_before']:.3f} before and {m['calibration']['ece_after']:.3f} after.
Urgency: a post is high (2) or critical once P(level > 1) exceeds {m['calibration']['urgency_cuts'][1]:.2f},
fitted so that {meta['training_args']['urgency_recall']:.0%} of the validation posts at levels 2-3 are found.

## Data
{data}

Rows: {meta['rows']['train']} train, {meta['rows']['validation']} validation, {meta['rows']['test']} test{refit}.

## Use
```python
from model import Predictor
Predictor.from_pretrained("{meta['name']}").predict("@airline my bag is lost")
```
With a BERT encoder (the default MiniLM), `transformers.pipeline("text-classification", model=DIR)` gives the
intent (uncalibrated) and ignores urgency; an MPNet folder loads only with the predictor.
"""
