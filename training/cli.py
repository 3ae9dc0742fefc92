"""`python -m training`: check data, train models, export them."""

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Social Triage training: labeled posts to a versioned model folder.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Labeled files: .csv, .jsonl or .parquet.")],
    text_column: Annotated[str, typer.Option(help="Column holding the post text.")] = "text",
    intent_column: Annotated[str, typer.Option(help="Column holding the intent label.")] = "intent",
    urgency_column: Annotated[str, typer.Option(help="Column holding urgency 0-3 (may be empty).")] = "urgency",
    min_per_class: Annotated[int, typer.Option(help="Fewest training rows an intent may have.")] = 10,
    near_duplicates: Annotated[bool, typer.Option(help="Also measure near-duplicates (word "
                                                       "3-gram Jaccard >= 0.8).")] = False,
):
    """Check labeled posts: schema, labels, urgency 0-3, empty or duplicate texts, rows per intent."""
    from .data import Columns, DataError, check_posts, load_posts

    try:
        df = load_posts(files, Columns(text_column, intent_column, urgency_column))
    except DataError as e:
        _fail(str(e))
    report = check_posts(df, min_per_class)
    print(json.dumps(report.counts, indent=2, ensure_ascii=False))
    if near_duplicates:
        _report_near_duplicates(df["text"].fillna("").tolist())
    for w in report.warnings:
        typer.secho(f"warning: {w}", fg="yellow")
    if not report.ok:
        for e in report.errors:
            typer.secho(f"error: {e}", fg="red", err=True)
        raise typer.Exit(1)
    typer.secho(f"ok: {report.counts['rows']} rows pass the check", fg="green")


def _report_near_duplicates(texts: list[str]) -> None:
    from .data import near_duplicates

    pairs = near_duplicates(texts)
    n = len(texts)
    involved = {i for a, b, _ in pairs for i in (a, b)}
    print(f"near-duplicates (word 3-gram Jaccard >= 0.8, @handles and links masked): {len(pairs)} pairs "
          f"of {n * (n - 1) // 2:,} ({len(pairs) / max(n * (n - 1) // 2, 1):.5%}); "
          f"{len(involved)} of {n} posts ({len(involved) / max(n, 1):.2%}) have a near-duplicate")
    for a, b, sim in pairs[:10]:
        print(f"  {sim:.2f}  row {a + 1}: {texts[a][:70]!r}  ~  row {b + 1}: {texts[b][:70]!r}")


def _parse_thresholds(values: list[str]) -> dict[str, float]:
    out = {}
    for v in values:
        label, sep, number = v.partition("=")
        try:
            out[label.strip()] = float(number)
        except ValueError:
            sep = ""
        if not sep:
            _fail(f"--threshold {v!r}: write LABEL=PROBABILITY, e.g. sales_lead=0.6")
    return out


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Labeled file (.csv/.jsonl/.parquet); repeat for more.")],
    out: Annotated[Path, typer.Option(help="Model folder to write, e.g. models/NAME.")],
    backend: Annotated[str, typer.Option(help="'transformer' (fine-tuned encoder) or "
                                              "'sklearn' (TF-IDF baseline).")] = "transformer",
    base_model: Annotated[Path | None, typer.Option(help="Local BERT or MPNet checkpoint folder "
                                                         "(e.g. all-mpnet-base-v2); default: the bundled MiniLM.")] = None,
    init_from: Annotated[Path | None, typer.Option(help="Continue from an earlier model folder "
                                                        "(same or extended labels).")] = None,
    text_column: Annotated[str, typer.Option(help="Column holding the post text.")] = "text",
    intent_column: Annotated[str, typer.Option(help="Column holding the intent label.")] = "intent",
    urgency_column: Annotated[str, typer.Option(help="Column holding urgency 0-3; empty rows "
                                                     "train only the intent head.")] = "urgency",
    epochs: Annotated[float, typer.Option(help="Most epochs (early stopping may end sooner).")] = 6.0,
    batch_size: Annotated[int, typer.Option(help="Posts per training step.")] = 32,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate of the encoder.")] = 8e-5,
    head_learning_rate: Annotated[float, typer.Option(help="Peak learning rate of the intent and urgency heads.")] = 1e-3,
    max_length: Annotated[int, typer.Option(help="Tokens kept per post.")] = 128,
    validation_fraction: Annotated[float, typer.Option(help="Share of training rows held out, stratified by intent.")] = 0.1,
    patience: Annotated[int, typer.Option(help="Epochs without a better validation macro-F1 before stopping.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    class_weights: Annotated[str, typer.Option(help="Loss weights per intent: balanced, sqrt (milder) or none.")] = "sqrt",
    urgency_weight: Annotated[float, typer.Option(help="Weight of the urgency loss beside the intent loss.")] = 1.0,
    min_per_class: Annotated[int, typer.Option(help="Fewest training rows an intent may have.")] = 10,
    urgency_recall: Annotated[float, typer.Option(help="Lower the cut into urgency 2-3 until this share of "
                                                       "the validation posts at 2-3 reach it; 0: the median "
                                                       "level.")] = 0.9,
    threshold: Annotated[list[str], typer.Option(help="LABEL=P: say LABEL only at probability P or more; repeatable.")] = [],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model folder.")] = False,
    export_onnx: Annotated[bool, typer.Option(help="Also export model.onnx (and int8) and serve the folder with "
                                                   "OpenVINO (bf16 where the CPU runs it faster than fp32).")] = False,
    precision: Annotated[str, typer.Option(help="auto: bf16 mixed precision on a GPU that has it, else fp32 "
                                                "(bf16 on CPUs scored lower on real tweets); or fp32, bf16.")] = "auto",
    teacher: Annotated[list[Path], typer.Option(help="Trained model folder, or its targets file from `teach`, to "
                                                     "learn from as well as the labels (distillation); repeat "
                                                     "for an ensemble.")] = [],
    distill_weight: Annotated[float, typer.Option(help="Share of the loss from the teachers' predictions.")] = 0.5,
    layers: Annotated[int | None, typer.Option(help="Keep this many encoder layers of the starting model, evenly "
                                                    "spaced (a smaller, faster student).")] = None,
    freeze_layers: Annotated[int | None, typer.Option(help="Keep the embeddings and this many of the lowest "
                                                           "encoder layers as the starting model has them "
                                                           "(0: the embeddings only).")] = None,
    pretrained_share: Annotated[float, typer.Option(help="After training, mix this share of the starting encoder's "
                                                         "weights (the base model's, or the --init-from folder's) "
                                                         "back into the trained one (weight-space ensembling; 0.2 "
                                                         "in `make model`).")] = 0.0,
):
    """Train a model folder from labeled posts, evaluate it and print the scores."""
    from .args import TrainArgs
    from .train import train as run

    started = time.time()
    try:
        args = TrainArgs(data=[str(p) for p in data], out=str(out), backend=backend,
                         base_model=str(base_model) if base_model else None,
                         init_from=str(init_from) if init_from else None,
                         text_column=text_column, intent_column=intent_column, urgency_column=urgency_column,
                         epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                         head_learning_rate=head_learning_rate, max_length=max_length,
                         validation_fraction=validation_fraction, patience=patience, seed=seed,
                         class_weights=class_weights, urgency_weight=urgency_weight,
                         min_per_class=min_per_class, thresholds=_parse_thresholds(threshold),
                         overwrite=overwrite, export_onnx=export_onnx, precision=precision,
                         urgency_recall=urgency_recall, teachers=[str(t) for t in teacher],
                         distill_weight=distill_weight, layers=layers,
                         freeze_layers=freeze_layers, pretrained_share=pretrained_share)
        run(args)
    except (ValueError, FileExistsError, OSError) as e:
        _fail(str(e))
    print(f"wall time: {time.time() - started:.0f} s")


@app.command()
def teach(
    teacher: Annotated[list[Path], typer.Option(help="Trained model folder; repeat for an ensemble.")],
    data: Annotated[list[Path], typer.Option("--data", help="The labeled training file(s) to score; repeat for more.")],
    out: Annotated[Path, typer.Option(help="Targets file to write (.parquet).")],
    text_column: Annotated[str, typer.Option(help="Column holding the post text.")] = "text",
):
    """Write the teachers' soft targets for every post, so `train --teacher FILE` distills without them."""
    from model.text import normalize

    from .data import Columns, DataError, load_posts
    from .transformer import write_targets

    if out.suffix != ".parquet":
        _fail(f"--out {out}: write a .parquet file")
    started = time.time()
    try:
        posts = load_posts(data, Columns(text=text_column))
        texts = list(dict.fromkeys(posts["text"].map(normalize)))
        write_targets([str(t) for t in teacher], texts, out)
    except (DataError, ValueError, OSError) as e:
        _fail(str(e))
    print(f"wrote soft targets for {len(texts)} posts to {out} in {time.time() - started:.0f} s")


@app.command("export-onnx")
def export_onnx_cmd(
    model: Annotated[Path, typer.Option(help="Trained model folder (torch backend).")],
    serve: Annotated[str | None, typer.Option(help="Also make BACKEND:PRECISION:MARGIN the folder's default "
                                                      "inference, e.g. onnx:int8:0.2 or torch:bf16:0.2.")] = None,
    calibration: Annotated[list[Path], typer.Option(
        help="Posts (any file the trainer reads) to smooth the int8 graph on; default: the model's training "
             "files where they are found unchanged.")] = [],
    smoothing: Annotated[bool, typer.Option(help="Smooth the int8 graph (SmoothQuant); --no-smoothing: plain "
                                                 "dynamic int8.")] = True,
):
    """Export the model's both heads to ONNX (fp32 and int8) inside the model folder."""
    from .onnx_export import calibration_posts, export_onnx

    try:
        choice = None
        if serve:
            backend, precision, margin = (serve.split(":") + ["fp32", "0"])[:3]
            choice = (backend, precision, float(margin))
        export_onnx(model, serve=choice, calibration=calibration_posts(model, calibration) if smoothing else None)
    except (ValueError, OSError) as e:
        _fail(str(e))


@app.command("export-feedback")
def export_feedback_cmd(
    out: Annotated[Path, typer.Option(help="File to write: .csv, .jsonl or .parquet.")],
    database_url: Annotated[str, typer.Option(envvar="TRIAGE_DATABASE_URL",
                                              help="The service's database (SQLAlchemy URL).")] = "sqlite:///triage.db",
    since: Annotated[datetime | None, typer.Option(help="Only corrections stored at or after this time (ISO, UTC "
                                                        "when no offset is given).")] = None,
):
    """Export agents' corrections as labeled posts; the latest correction of a post wins."""
    from sqlalchemy.exc import SQLAlchemyError

    from .feedback import export_feedback

    try:
        df = export_feedback(database_url, out, since)
    except (SQLAlchemyError, ValueError, OSError) as e:
        _fail(f"cannot export feedback: {str(e).splitlines()[0]}")
    print(f"wrote {len(df)} corrected posts to {out}; intents: {df['intent'].value_counts().to_dict()}")
    print(f"retrain with: python -m training train --data data/posts.csv --data {out} --out models/NEW")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(app())
