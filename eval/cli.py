"""`python -m eval`: reports, comparisons, the published complaint benchmark and the speed benchmark."""

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Social Triage evaluation.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


@app.command()
def report(
    model: Annotated[Path, typer.Option(help="Model folder.")] = Path("models/default"),
    data: Annotated[Path, typer.Option(help="Labeled file (.csv/.jsonl/.parquet).")] = SHARED / "dev-intents.csv",
    out: Annotated[Optional[Path], typer.Option(help="Folder for report.json, report.md and plots; "
                                                     "default reports/MODEL-DATA.")] = None,
    backend: Annotated[Optional[str], typer.Option(help="torch, onnx or sklearn; default: the model's.")] = None,
    text_column: Annotated[str, typer.Option(help="Column holding the post text.")] = "text",
    intent_column: Annotated[str, typer.Option(help="Column holding the intent label.")] = "intent",
    urgency_column: Annotated[str, typer.Option(help="Column holding urgency 0-3.")] = "urgency",
    rounds: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% intervals.")] = 1000,
):
    """Accuracy, macro-F1, per-intent scores, urgency kappa, calibration, slices and plots on a labeled file."""
    from model import ModelFolderError
    from training.data import Columns, DataError

    from .report import print_table, run_report

    out = out or Path("reports") / f"{model.name}-{data.stem}"
    try:
        result = run_report(model, data, out, Columns(text_column, intent_column, urgency_column), backend, rounds)
    except (ModelFolderError, DataError) as e:
        _fail(str(e))
    print_table(result)
    print(f"written: {out}/report.json, report.md, predictions.csv, {', '.join(result['plots'])}")


@app.command()
def compare(
    model: Annotated[list[Path], typer.Option("--model", help="Two model folders: A (current) then B (candidate).")],
    data: Annotated[Path, typer.Option(help="Labeled file.")] = SHARED / "dev-intents.csv",
    fail_if_worse: Annotated[list[str], typer.Option(help="METRIC:TOLERANCE; exit 1 when B is worse than A "
                                                          "by more than TOLERANCE. Repeatable.")] = [],
    rounds: Annotated[int, typer.Option(help="Bootstrap resamples for the intervals.")] = 1000,
    out: Annotated[Optional[Path], typer.Option(help="Also write the comparison as JSON here.")] = None,
):
    """Two models side by side with the difference and its 95% interval; gates a release with --fail-if-worse."""
    import json

    from model import ModelFolderError
    from training.data import DataError

    from .compare import compare as run, gate, print_comparison

    if len(model) != 2:
        _fail("give exactly two models: --model A --model B")
    try:
        result = run(model[0], model[1], data, rounds=rounds)
        failures = gate(result, fail_if_worse)
    except (ModelFolderError, DataError, ValueError) as e:
        _fail(str(e))
    print_comparison(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**result, "failures": failures}, indent=2))
    for f in failures:
        typer.secho(f"worse: {f}", fg="red", err=True)
    if failures:
        raise typer.Exit(1)
    if fail_if_worse:
        typer.secho("gate passed: B is not worse than A beyond the tolerances", fg="green")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(app())
