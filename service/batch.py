"""`python -m service.batch`: score CSV, JSON Lines or Parquet files on Ray Data, into Parquet.

    python -m service.batch --input exports/ --output scored/

Each input file is cut into blocks of `--block-rows` rows (block k holds rows k*B to (k+1)*B - 1, so the
same file always gives the same blocks), and each block's results go to one file,
`OUTPUT/part-<file>-<block>.parquet`, written under a temporary name and renamed once complete. A rerun
skips the blocks whose file exists: after a crash nothing is lost and no post is written twice.

Ray Data does the work: a read stage cuts the files into blocks, an actor pool (each actor loads the
model once) scores them batch by batch with the same `to_score` as the API, and this process writes a
block's file as soon as all of its rows are back. Ray runs locally by default; `--ray-address` or
RAY_ADDRESS joins a cluster, whose nodes must see the input and the model folder at the same paths.
"""

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import ValidationError

from model import ModelFolderError, Predictor, read_metadata

from .routing import Rules, RulesError
from .schemas import Author, Engagement, Post
from .scoring import to_score

ROOT = Path(__file__).resolve().parents[1]
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
MANIFEST = "_batch.json"  # a leading underscore or dot keeps Parquet readers of OUTPUT off a file
# Optional flat metadata columns (a CSV has no nesting); JSON Lines and Parquet may instead hold the
# API's nested `author` and `engagement` objects.
AUTHOR_COLUMNS = ("followers", "verified")
ENGAGEMENT_COLUMNS = ("likes", "shares", "replies")

# A block in flight between Ray stages: `_part` and `_rows` say which output file it belongs to and how
# many rows that file gets; `error` holds the API's validation message for a post that cannot be scored.
INPUT_SCHEMA = pa.schema([
    ("_part", pa.string()), ("_rows", pa.int64()), ("source", pa.string()), ("row", pa.int64()),
    ("id", pa.string()), ("text", pa.string()), ("followers", pa.int64()), ("verified", pa.bool_()),
    ("likes", pa.int64()), ("shares", pa.int64()), ("replies", pa.int64()), ("error", pa.string()),
])


class BatchError(ValueError):
    """Input or output that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    id: str = "id"


def output_schema(labels: list[str], include_text: bool = False) -> pa.Schema:
    """The API's `Score` fields as Parquet columns (nested like the JSON), then text, error and source row."""
    fields = [
        ("id", pa.string()), ("intent", pa.string()),
        ("scores", pa.struct([(label, pa.float64()) for label in labels])),
        ("also", pa.list_(pa.string())),
        ("urgency", pa.struct([("level", pa.int64()), ("name", pa.string()), ("score", pa.float64()),
                               ("reasons", pa.list_(pa.string()))])),
        ("route", pa.struct([("queue", pa.string()), ("priority", pa.string()),
                             ("respond_within_minutes", pa.int64())])),
        ("model_version", pa.string()),
    ]
    if include_text:
        fields.append(("text", pa.string()))
    fields += [("error", pa.string()), ("source", pa.string()), ("row", pa.int64())]
    return pa.schema(fields)


# ---- reading ---------------------------------------------------------------------------------------
def list_inputs(path: Path) -> list[Path]:
    """The file itself, or every CSV, JSON Lines and Parquet file under the folder, in a stable order."""
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise BatchError(f"{path}: unknown format; use one of {', '.join(FORMATS)}")
        return [path]
    if not path.is_dir():
        raise BatchError(f"{path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                   and not p.name.startswith((".", "_")))
    if not files:
        raise BatchError(f"{path} holds no {', '.join(FORMATS)} files")
    return files


def file_key(path: Path, root: Path) -> str:
    """The file's name in its output part names: its path under the input folder, made file-name safe."""
    relative = path.name if root.is_file() else path.relative_to(root).as_posix()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", relative)


def part_name(key: str, block: int) -> str:
    return f"part-{key}-{block:05d}.parquet"


def _frames(path: Path, columns: Columns, only_text: bool = False) -> Iterator[pd.DataFrame]:
    """The file's records in order, in chunks of any size, with the columns scoring reads."""
    fmt = FORMATS[path.suffix.lower()]
    wanted = {columns.text} if only_text else {columns.text, columns.id, "author", "engagement",
                                               *AUTHOR_COLUMNS, *ENGAGEMENT_COLUMNS}
    try:
        if fmt == "csv":
            present = pd.read_csv(path, nrows=0).columns
            _check_text_column(path, columns, present)
            yield from pd.read_csv(path, usecols=[c for c in present if c in wanted], dtype=str,
                                   keep_default_na=False, chunksize=10_000)
        elif fmt == "jsonl":
            yield from _json_lines(path, columns, wanted)
        else:
            reader = pq.ParquetFile(path)
            _check_text_column(path, columns, reader.schema_arrow.names)
            for batch in reader.iter_batches(batch_size=10_000,
                                             columns=[c for c in reader.schema_arrow.names if c in wanted]):
                # Integers with gaps stay exact Python ints (as floats, tweet ids would lose digits).
                yield batch.to_pandas(integer_object_nulls=True)
    except (ValueError, OSError, pa.ArrowInvalid) as e:
        if isinstance(e, BatchError):
            raise
        raise BatchError(f"{path}: cannot read it as {fmt}: {e}") from e


def _json_lines(path: Path, columns: Columns, wanted: set[str]) -> Iterator[pd.DataFrame]:
    """JSON Lines as object columns: pandas' own reader turns integer ids with gaps into floats."""
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BatchError(f"{path}, line {number}: not valid JSON: {e}") from e
            if not isinstance(record, dict):
                raise BatchError(f"{path}, line {number}: a JSON object per line is needed")
            records.append({k: v for k, v in record.items() if k in wanted})
            if len(records) == 10_000:
                yield _records_frame(path, columns, records)
                records = []
    if records:
        yield _records_frame(path, columns, records)


def _records_frame(path: Path, columns: Columns, records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(records, dtype=object)
    if columns.text not in frame.columns:
        raise BatchError(f"{path} has no {columns.text!r} field in its first records; name the text field "
                         "with --text-column")
    return frame


def _check_text_column(path: Path, columns: Columns, present) -> None:
    if columns.text not in present:
        raise BatchError(f"{path} has no {columns.text!r} column (columns: {', '.join(map(str, present))}); "
                         "name the text column with --text-column")


def count_rows(path: Path, columns: Columns) -> int:
    if FORMATS[path.suffix.lower()] == "parquet":
        _check_text_column(path, columns, pq.read_schema(path).names)
        return pq.ParquetFile(path).metadata.num_rows
    return sum(len(chunk) for chunk in _frames(path, columns, only_text=True))


def iter_blocks(path: Path, block_rows: int, columns: Columns) -> Iterator[tuple[int, pd.DataFrame]]:
    """(k, rows k*block_rows to (k+1)*block_rows - 1) for every block of the file; the index is the row number."""
    pending, start, block = [], 0, 0
    for frame in _frames(path, columns):
        pending.append(frame)
        buffered = sum(len(f) for f in pending)
        if buffered < block_rows:
            continue
        rows = pd.concat(pending, ignore_index=True)
        cut = len(rows) - len(rows) % block_rows
        for offset in range(0, cut, block_rows):
            yield block, rows.iloc[offset:offset + block_rows].set_axis(range(start, start + block_rows))
            block, start = block + 1, start + block_rows
        pending = [rows.iloc[cut:]]
    rows = pd.concat(pending, ignore_index=True) if pending else pd.DataFrame()
    if len(rows):
        yield block, rows.set_axis(range(start, start + len(rows)))


def _missing(value) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or a dict
        return False


def post_fields(record: dict, columns: Columns) -> dict:
    """An input record in the API's `Post` shape (flat metadata columns or nested objects)."""
    fields: dict = {"text": record.get(columns.text)}
    post_id = record.get(columns.id)
    if not _missing(post_id):
        fields["id"] = str(int(post_id)) if isinstance(post_id, float) and post_id.is_integer() else str(post_id)
    for name, flat in (("author", AUTHOR_COLUMNS), ("engagement", ENGAGEMENT_COLUMNS)):
        nested = record.get(name)
        if isinstance(nested, dict):
            fields[name] = {k: v for k, v in nested.items() if not _missing(v)}
        values = {c: record[c] for c in flat if c in record and not _missing(record[c])}
        if values:
            fields[name] = {**fields.get(name, {}), **values}
    if isinstance(fields["text"], float) and math.isnan(fields["text"]):
        fields["text"] = None
    return fields


def check_posts(frame: pd.DataFrame, columns: Columns, source: str, part: str, rows: int) -> pa.Table:
    """Validate each record as the API would; an invalid one keeps its place with the API's message."""
    out = []
    for row, record in zip(frame.index, frame.to_dict("records")):
        fields = post_fields(record, columns)
        base = {"_part": part, "_rows": rows, "source": source, "row": int(row)}
        try:
            post = Post.model_validate(fields)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raw_id = fields.get("id")
            out.append({**base, "id": raw_id if isinstance(raw_id, str) else None, "error": f"{where}: {err['msg']}"})
            continue
        author, engagement = post.author, post.engagement
        out.append({**base, "id": post.id, "text": post.text,
                    "followers": author.followers if author else None, "verified": author.verified if author else None,
                    "likes": engagement.likes if engagement else None,
                    "shares": engagement.shares if engagement else None,
                    "replies": engagement.replies if engagement else None})
    return pa.Table.from_pylist(out, schema=INPUT_SCHEMA)


# ---- scoring -----------------------------------------------------------------------------------------
def _post(r: dict) -> Post:
    """The `Post` back from a checked row (no second validation)."""
    author = None
    if r["followers"] is not None or r["verified"] is not None:
        author = Author.model_construct(followers=r["followers"], verified=bool(r["verified"]))
    engagement = None
    if r["shares"] is not None:
        engagement = Engagement.model_construct(likes=r["likes"], shares=r["shares"], replies=r["replies"])
    return Post.model_construct(id=r["id"], text=r["text"], author=author, engagement=engagement)


def score_table(table: pa.Table, predictor: Predictor, rules: Rules, include_text: bool = False) -> pa.Table:
    """Checked rows in, the API's result fields out (plus `_part`/`_rows` when the input has them)."""
    rows = table.to_pylist()
    valid = [r for r in rows if r["error"] is None]
    results = iter(predictor.predict([r["text"] for r in valid]))
    out = []
    for r in rows:
        if r["error"] is None:
            score = to_score(_post(r), next(results), rules, predictor.version)
        else:
            score = {"id": r["id"], "model_version": predictor.version}
        if include_text:
            score["text"] = r["text"]
        out.append({**score, "error": r["error"], "source": r["source"], "row": r["row"],
                    "_part": r["_part"], "_rows": r["_rows"]})
    schema = output_schema(predictor.labels, include_text)
    schema = schema.append(pa.field("_part", pa.string())).append(pa.field("_rows", pa.int64()))
    return pa.Table.from_pylist(out, schema=schema)


class Scorer:
    """A Ray actor: loads the model once, then scores batch after batch."""

    def __init__(self, model_dir: str, rules: Rules, backend: str | None, precision: str | None,
                 margin: float | None, threads: int, include_text: bool):
        self.predictor = Predictor.from_pretrained(model_dir, backend=backend, threads=threads,
                                                   precision=precision, margin=margin)
        self.rules, self.include_text = rules, include_text

    def __call__(self, table: pa.Table) -> pa.Table:
        return score_table(table, self.predictor, self.rules, self.include_text)


def read_stage(batch: dict, block_rows: int, columns: Columns) -> Iterator[pa.Table]:
    """Ray read stage: one input file a row, its still-missing blocks out, checked."""
    for path, key, blocks in zip(batch["path"], batch["key"], batch["blocks"]):
        wanted = {int(b) for b in str(blocks).split(",")}
        for block, frame in iter_blocks(Path(path), block_rows, columns):
            if block in wanted:
                yield check_posts(frame, columns, key, part_name(key, block), len(frame))


# ---- output ------------------------------------------------------------------------------------------
def write_atomic(table: pa.Table, path: Path) -> None:
    """Write to a hidden temporary name, flush to disk, then rename: the file is whole or absent."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class PartWriter:
    """Gathers scored rows by block (Ray may split or merge blocks on the way) and writes complete ones."""

    def __init__(self, output: Path):
        self.output = output
        self.pieces: dict[str, list[pa.Table]] = {}
        self.written = 0
        self.errors = 0

    def add(self, table: pa.Table) -> None:
        for part in pc.unique(table.column("_part")).to_pylist():
            piece = table.filter(pc.equal(table.column("_part"), part))
            pieces = self.pieces.setdefault(part, [])
            pieces.append(piece)
            expected = piece.column("_rows")[0].as_py()
            if sum(len(p) for p in pieces) == expected:
                whole = pa.concat_tables(self.pieces.pop(part)).sort_by("row").drop_columns(["_part", "_rows"])
                write_atomic(whole, self.output / part)
                self.written += 1
                self.errors += len(whole) - whole.column("error").null_count


# ---- planning ------------------------------------------------------------------------------------------
@dataclass
class InputFile:
    path: Path
    key: str
    rows: int
    pending: list[int]


def plan(input_path: Path, output: Path, columns: Columns, block_rows: int, model_version: str,
         include_text: bool) -> list[InputFile]:
    """Every input file with its blocks still to write; records the run's settings in OUTPUT/_batch.json
    and refuses a folder that an earlier run wrote with other settings, a changed input or another model."""
    files = list_inputs(input_path)
    keys = [file_key(f, input_path) for f in files]
    if len(set(keys)) < len(keys):
        raise BatchError(f"two input files under {input_path} map to the same output name; rename one")
    manifest = {"model_version": model_version, "block_rows": block_rows, "include_text": include_text,
                "files": {k: {"path": str(f.resolve()), "rows": count_rows(f, columns)} for k, f in zip(keys, files)}}
    output.mkdir(parents=True, exist_ok=True)
    previous_file = output / MANIFEST
    if previous_file.is_file():
        previous = json.loads(previous_file.read_text())
        for setting in ("model_version", "block_rows", "include_text"):
            if previous[setting] != manifest[setting]:
                raise BatchError(f"{output} was written with {setting} {previous[setting]!r}, this run has "
                                 f"{manifest[setting]!r}; rerun with the same setting or write to a new --output")
        for key, old in previous["files"].items():
            if key in manifest["files"] and manifest["files"][key]["rows"] != old["rows"]:
                raise BatchError(f"{old['path']} had {old['rows']} rows when {output} was started and has "
                                 f"{manifest['files'][key]['rows']} now; write to a new --output")
        manifest["files"] = {**previous["files"], **manifest["files"]}
    tmp = previous_file.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, previous_file)
    for stale in output.glob(".part-*.tmp"):  # left by a run that was killed while writing
        stale.unlink()
    plans = []
    for key, f in zip(keys, files):
        blocks = math.ceil(manifest["files"][key]["rows"] / block_rows)
        pending = [b for b in range(blocks) if not (output / part_name(key, b)).is_file()]
        plans.append(InputFile(f, key, manifest["files"][key]["rows"], pending))
    return plans


# ---- the run ---------------------------------------------------------------------------------------------
@dataclass
class Options:
    model_dir: Path
    routing: Path
    backend: str | None = None
    precision: str | None = None
    cascade_margin: float | None = None
    ray_address: str | None = None
    num_cpus: int | None = None
    actors: int | None = None
    threads: int = 1
    batch_size: int = 256
    block_rows: int = 10_000
    columns: Columns = Columns()
    include_text: bool = False
    progress: bool = True


def _start_ray(options: Options):
    """A local Ray on this machine, or the cluster at the address; returns the CPUs it offers."""
    import logging

    import ray

    # Ray's usage reporting phones home and, at the end of a run, queries a Prometheus that is not there
    # (a page of connection tracebacks); a user who wants it sets the variable.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error"}
    if options.ray_address:
        # The cluster gets this checkout's code; its nodes need the same Python packages installed.
        ray.init(address=options.ray_address, logging_level=logging.WARNING,
                 runtime_env={"env_vars": env, "py_modules": [str(ROOT / "model"), str(ROOT / "service")]})
    else:
        # Local Ray's processes inherit this environment; a runtime_env would make Ray start new worker
        # processes for it instead of using the ones it starts with (20 s more on 2 cores).
        saved = dict(os.environ)
        path = os.environ.get("PYTHONPATH")
        os.environ.update(env, PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
        try:
            ray.init(num_cpus=options.num_cpus or os.cpu_count(), include_dashboard=False,
                     logging_level=logging.WARNING)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours counts posts and written blocks
    ctx.print_on_execution_start = False
    # Ray merges what a read task yields into blocks of up to this size, and an actor takes a whole block
    # per task: at Ray's 128 MiB a whole file of posts is one block, scored by one actor while the others
    # idle. About a batch of posts a block spreads the work (an Arrow row here is 200-600 bytes).
    ctx.target_max_block_size = max(64 * 1024, options.batch_size * 512)
    return int(ray.cluster_resources().get("CPU", 1))


def run(input_path: Path, output: Path, options: Options, log=print) -> dict:
    """Score every block of the input that OUTPUT lacks; returns what was done."""
    from tqdm import tqdm

    meta = read_metadata(options.model_dir)
    rules = Rules.load(options.routing)
    rules.check_labels(meta["labels"])
    plans = plan(input_path, output, options.columns, options.block_rows, meta["version"], options.include_text)
    todo = [p for p in plans if p.pending]
    blocks = sum(math.ceil(p.rows / options.block_rows) for p in plans)
    pending_blocks = sum(len(p.pending) for p in todo)
    posts = sum(min(options.block_rows, p.rows - b * options.block_rows) for p in todo for b in p.pending)
    summary = {"files": len(plans), "blocks": blocks, "skipped_blocks": blocks - pending_blocks,
               "written_blocks": 0, "posts": posts, "errors": 0, "seconds": 0.0, "actors": 0,
               "model_version": meta["version"]}
    log(f"{len(plans)} files, {blocks} blocks of up to {options.block_rows} posts: "
        f"{blocks - pending_blocks} already written, {pending_blocks} to score ({posts} posts)")
    if not todo:
        return summary

    import ray

    started = time.perf_counter()
    cpus = _start_ray(options)
    actors = options.actors or max(1, cpus // options.threads)
    log(f"Ray: {cpus} CPUs, {actors} scoring actors of {options.threads} threads, model {meta['version']}")
    writer = PartWriter(output)
    try:
        ds = ray.data.from_items([{"path": str(p.path.resolve()), "key": p.key, "blocks": ",".join(map(str, p.pending))}
                                  for p in todo])
        # Reading is a thousand times cheaper than scoring: it takes no CPU slot from the actors.
        ds = ds.map_batches(read_stage, batch_size=1, num_cpus=0,
                            fn_kwargs={"block_rows": options.block_rows, "columns": options.columns})
        ds = ds.map_batches(
            Scorer, batch_size=options.batch_size, batch_format="pyarrow", num_cpus=options.threads,
            compute=ray.data.ActorPoolStrategy(size=actors),
            fn_constructor_kwargs={"model_dir": str(options.model_dir.resolve()), "rules": rules,
                                   "backend": options.backend, "precision": options.precision,
                                   "margin": options.cascade_margin, "threads": options.threads,
                                   "include_text": options.include_text})
        with tqdm(total=posts, unit="post", desc="scoring", disable=not options.progress, file=sys.stderr,
                  mininterval=2) as bar:
            for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                writer.add(table)
                bar.update(len(table))
                bar.set_postfix(blocks=f"{writer.written}/{pending_blocks}", refresh=False)
    finally:
        ray.shutdown()
    if writer.pieces:
        raise RuntimeError(f"blocks came back incomplete: {', '.join(sorted(writer.pieces))}")
    summary.update(written_blocks=writer.written, errors=writer.errors, actors=actors,
                   seconds=round(time.perf_counter() - started, 2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.batch",
        description="Score CSV, JSON Lines or Parquet files on Ray Data into Parquet, with the API's fields. "
                    "A rerun into the same --output skips the blocks already written.")
    parser.add_argument("--input", type=Path, required=True, help="a file, or a folder of files (searched recursively)")
    parser.add_argument("--output", type=Path, required=True, help="folder for part-<file>-<block>.parquet files")
    parser.add_argument("--model-dir", type=Path, help="model folder (TRIAGE_MODEL_DIR, default models/default)")
    parser.add_argument("--routing", type=Path, help="routing rules YAML (TRIAGE_ROUTING, default: the shipped rules)")
    parser.add_argument("--backend", help="openvino, torch, onnx or sklearn (TRIAGE_BACKEND, default: the model's)")
    parser.add_argument("--precision", help="fp32, bf16 (torch) or int8 (onnx) (TRIAGE_PRECISION)")
    parser.add_argument("--cascade-margin", type=float, help="re-score close calls in fp32 (TRIAGE_CASCADE_MARGIN)")
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster to use (RAY_ADDRESS); default: start a local Ray on this machine")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all cores)")
    parser.add_argument("--actors", type=int, help="scoring actors, each with its own model (default: CPUs / threads)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per actor (default 1)")
    parser.add_argument("--batch-size", type=int, default=256, help="posts per predictor call (default 256)")
    parser.add_argument("--block-rows", type=int, default=10_000,
                        help="posts per output file, the unit a rerun skips (default 10000; keep it across reruns)")
    parser.add_argument("--text-column", default="text", help="column holding the post text (default text)")
    parser.add_argument("--id-column", default="id", help="column holding the post id (default id)")
    parser.add_argument("--include-text", action="store_true", help="also write each post's text")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    for name in ("num_cpus", "actors", "threads", "batch_size", "block_rows"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from .settings import Settings

    overrides = {k: getattr(args, k) for k in ("model_dir", "routing", "backend", "precision", "cascade_margin")}
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
        options = Options(model_dir=settings.model_dir, routing=settings.routing, backend=settings.backend,
                          precision=settings.precision, cascade_margin=settings.cascade_margin,
                          ray_address=args.ray_address, num_cpus=args.num_cpus, actors=args.actors,
                          threads=args.threads, batch_size=args.batch_size, block_rows=args.block_rows,
                          columns=Columns(args.text_column, args.id_column), include_text=args.include_text,
                          progress=not args.no_progress)
        summary = run(args.input, args.output, options)
    except (ValidationError, ModelFolderError, RulesError, BatchError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    # Import the module under its own name, so that Ray ships `service.batch.Scorer` by reference.
    from service.batch import main as _main

    sys.exit(_main())
