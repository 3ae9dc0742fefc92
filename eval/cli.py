"""`python -m eval`: reports, comparisons, the published complaint benchmark, speed and load."""

import os
import sys
from pathlib import Path
from typing import Annotated

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
    out: Annotated[Path | None, typer.Option(help="Folder for report.json, report.md and plots; "
                                                     "default reports/MODEL-DATA.")] = None,
    backend: Annotated[str | None, typer.Option(help="openvino, torch, onnx or sklearn; default: the model's.")] = None,
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
    out: Annotated[Path | None, typer.Option(help="Also write the comparison as JSON here.")] = None,
):
    """Two models side by side with the difference and its 95% interval; gates a release with --fail-if-worse."""
    import json

    from model import ModelFolderError
    from training.data import DataError

    from .compare import compare as run
    from .compare import gate, print_comparison

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


@app.command("complaints-acl2019")
def complaints_acl2019(
    data: Annotated[Path, typer.Option(help="The ACL 2019 complaints file (id, text, complaint, domain).")] = (
        SHARED / "complaints-acl2019.csv"),
    folds: Annotated[int, typer.Option(help="How many of the 10 folds to run (fewer for a quick check).")] = 10,
    epochs: Annotated[float, typer.Option(help="Most training epochs per fold.")] = 4.0,
    baseline_only: Annotated[bool, typer.Option(help="Run only the TF-IDF baseline.")] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here.")] = None,
):
    """Reproduce the published protocol: 10-fold CV of complaint vs not, next to the published table."""
    import json

    from .acl2019 import print_table, run

    if not data.is_file():
        _fail(f"{data} not found; the file lives in ../shared/data/")
    if not 1 <= folds <= 10:
        _fail("--folds must be between 1 and 10")
    result = run(data, folds=folds, epochs=epochs, transformer=not baseline_only)
    print_table(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


@app.command("complaints-unseen")
def complaints_unseen(
    model: Annotated[list[Path], typer.Option("--model", help="Model folder; repeat to compare.")],
    data: Annotated[Path, typer.Option(help="The ACL 2019 complaints file.")] = SHARED / "complaints-acl2019.csv",
    dev: Annotated[Path, typer.Option(help="The dev set whose tweets are left out.")] = SHARED / "dev-intents.csv",
):
    """Complaint F1 on the ACL tweets outside the dev set: a check that a gain on dev is not the dev set's own."""
    from .acl2019 import unseen_complaints

    for path in (data, dev):
        if not path.is_file():
            typer.echo(f"skipped: {path} not found (the shared evaluation data is not on this machine)")
            raise typer.Exit(0)
    for row in unseen_complaints(model, data, dev):
        print(f"{row['model']}: {row['tweets']} unseen tweets, complaint F1 {row['complaint_f1']:.3f}, "
              f"complaint-vs-not macro-F1 {row['macro_f1']:.3f}")


@app.command()
def bench(
    model: Annotated[Path, typer.Option(help="Model folder (transformer).")] = Path("models/default"),
    posts: Annotated[int, typer.Option(help="Posts for batched runs and agreement.")] = 2000,
    single: Annotated[int, typer.Option(help="Posts scored one at a time in-process.")] = 300,
    requests: Annotated[int, typer.Option(help="Single-post HTTP requests per concurrency level.")] = 2000,
    batch: Annotated[int, typer.Option(help="Batch size for batched runs.")] = 32,
    max_seconds: Annotated[float, typer.Option(help="Upper bound on each HTTP load run.")] = 60.0,
    service: Annotated[str | None, typer.Option(help="The HTTP service's BACKEND:PRECISION:MARGIN, e.g. "
                                                "openvino:auto:0; auto: bf16 where the CPU runs it faster than fp32, "
                                                "else fp32. Default: the model folder's own.")] = None,
    margin: Annotated[float, typer.Option(help="Cascade margin of the low-precision variants.")] = 0.2,
    threads: Annotated[int | None, typer.Option(help="Inference threads (default: all cores).")] = None,
    streams: Annotated[int, typer.Option(help="Inference streams of the in-process run that mirrors the service.")] = 2,
    stream_batch: Annotated[int, typer.Option(help="Batch size of that run (the service's micro-batches are up "
                                              "to 8 posts; 16 is its best in-process).")] = 16,
    http: Annotated[bool, typer.Option(help="Also benchmark the running HTTP service.")] = True,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here.")] = None,
):
    """Posts/s and p50/p95/p99 latency: plain pipeline, our predictor per backend, and the HTTP service."""
    import json

    from model import read_metadata
    from model.backends import fast_bf16, resolve_precision

    from . import bench as b

    meta = read_metadata(model)
    if meta["backend"] != "torch":
        _fail(f"{model} is a {meta['backend']} model; bench compares transformer backends")
    if not (model / "model.int8.onnx").is_file():
        from training.onnx_export import calibration_posts, export_onnx

        print("exporting ONNX files into the model folder first")
        export_onnx(model, calibration=calibration_posts(model))
    texts, source = b.bench_texts(posts)
    rows = b.bench_pipeline(model, texts, single, batch)
    variants = [("torch", "fp32", 0.0), ("torch", "bf16", 0.0), ("torch", "bf16", margin), ("onnx", "fp32", 0.0),
                ("onnx", "int8", 0.0), ("onnx", "int8", margin), ("openvino", "fp32", 0.0), ("openvino", "bf16", 0.0)]
    if not fast_bf16():  # bf16 slower than fp32: minutes spent on a row nobody would serve
        print("bf16 is not faster than fp32 on this CPU (no AMX or AVX512-BF16, or timed slower): "
              "the bf16 rows are skipped")
        variants = [v for v in variants if v[1] != "bf16"]
    rows += b.bench_predictor(model, texts, single, batch, variants, threads)
    saved = meta.get("inference", {})
    service = service or f"{saved.get('backend', 'torch')}:{saved.get('precision', 'auto')}:{saved.get('cascade_margin', 0)}"
    backend, precision, service_margin = (service.split(":") + ["fp32", "0"])[:3]
    variant = [backend, resolve_precision(backend, precision), float(service_margin)]
    rows.append(b.bench_streams(model, texts, variant, streams, stream_batch))
    if http:
        rows += b.bench_http(model, texts, variant, requests, batch, max_seconds, threads)
    result = {"source": source, "texts": len(texts), "cpus": os.cpu_count(), "service": service,
              "service_variant": variant, "rows": rows}
    b.print_table(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


@app.command()
def load(
    model: Annotated[Path, typer.Option(help="Model folder the service loads.")] = Path("models/default"),
    clients: Annotated[int, typer.Option(min=1, max=512, help="Concurrent keep-alive clients.")] = 64,
    seconds: Annotated[float, typer.Option(min=1, max=3600, help="How long the clients send.")] = 60.0,
    warmup: Annotated[float, typer.Option(min=0, help="Memory growth is measured from this second to the end.")] = 10.0,
    batch_every: Annotated[int, typer.Option(min=0, help="Every Nth request of a client is a batch (0: none).")] = 4,
    batch_size: Annotated[int, typer.Option(min=1, max=512, help="Posts in a batch request.")] = 16,
    max_growth: Annotated[float, typer.Option(help="Fail when memory grows this many percent or more.")] = 10.0,
    out: Annotated[Path | None, typer.Option(help="Also write the figures as JSON here.")] = None,
):
    """Start the service on a free 127.0.0.1 port and hold it under load: requests, errors, posts/s, p50/p99
    latency and the server's memory growth. Exits 1 on any error or on memory growth of --max-growth or more."""
    import json

    from model import ModelFolderError, read_metadata

    from .load import print_load, run_load

    if warmup >= seconds:
        _fail("--warmup must be shorter than --seconds")
    try:
        read_metadata(model)
    except ModelFolderError as e:
        _fail(str(e))
    result = run_load(model, clients, seconds, warmup, batch_every, batch_size)
    print_load(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    failures = ([f"{result['errors']} requests failed"] if result["errors"] else []) + (
        [f"memory grew {result['rss_growth_pct']:.1f}% (limit {max_growth:g}%)"]
        if result["rss_growth_pct"] >= max_growth else [])
    for f in failures:
        typer.secho(f"failed: {f}", fg="red", err=True)
    if failures:
        raise typer.Exit(1)
    typer.secho("held: no errors, memory growth under the limit", fg="green")


@app.command("bench-batch")
def bench_batch(
    model: Annotated[Path, typer.Option(help="Model folder.")] = Path("models/default"),
    posts: Annotated[int, typer.Option(help="Posts to score: real tweets from ../shared/data, repeated.")] = 100_000,
    batch_size: Annotated[int, typer.Option(help="Posts per predictor call, the same in both runs.")] = 256,
    block_rows: Annotated[int, typer.Option(help="Posts per output block of the Ray job.")] = 10_000,
    threads: Annotated[int, typer.Option(help="Inference threads per Ray actor.")] = 1,
    actors: Annotated[int | None, typer.Option(help="Ray actors (default: CPUs / threads).")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of the local Ray (default: all cores).")] = None,
    backend: Annotated[str | None, typer.Option(help="openvino, torch, onnx or sklearn; default: the model's.")] = None,
    precision: Annotated[str | None, typer.Option(help="fp32, bf16 or int8; default: the model's.")] = None,
    work: Annotated[Path | None, typer.Option(help="Keep the input and both outputs here (default: a "
                                                   "temporary folder, removed).")] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON here.")] = None,
):
    """Posts/s of the Ray Data batch job and of a plain single-process loop over the predictor, in one run."""
    import json
    import tempfile

    from model import ModelFolderError, read_metadata

    from . import bench as b

    try:
        read_metadata(model)
    except ModelFolderError as e:
        _fail(str(e))
    texts = b.batch_texts(posts)
    if texts is None:
        print(f"skipped: {b.SHARED} with {' and '.join(b.BATCH_SOURCES)} is not here; the benchmark needs real tweets")
        return
    if work and work.exists():
        _fail(f"{work} exists; give a new folder")
    with tempfile.TemporaryDirectory() as tmp:
        result = b.bench_batch(model, texts, work or Path(tmp), batch_size, block_rows, threads, actors, num_cpus,
                               backend, precision)
    b.print_batch(result)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(app())
