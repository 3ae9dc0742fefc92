"""Reading labeled posts (CSV, JSON Lines, Parquet) and checking them before training.

The file format is the labeling guide's: `text`, `intent`, `urgency` (0-3 or empty),
`also` (secondary intents, `;`-separated), `split` (train/validation/test), any other columns kept.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

# The guide's intents in their priority order; a file may use others (then a warning, not an error).
GUIDE_INTENTS = ["complaint", "sales_lead", "question", "praise", "other"]
URGENCY_LEVELS = 4
SPLITS = {"train", "validation", "test"}
LABEL_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class Columns:
    """Where the guide's columns are in a raw export."""
    text: str = "text"
    intent: str = "intent"
    urgency: str = "urgency"
    also: str = "also"


class DataError(ValueError):
    """Bad training data; the message names every row and the fix."""


def load_posts(paths: list[str | Path], columns: Columns | None = None) -> pd.DataFrame:
    """Load one or more labeled files through `datasets` into one frame with the guide's column names."""
    from datasets import load_dataset

    columns = columns or Columns()
    frames = []
    for path in map(Path, paths):
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise DataError(f"{path}: unknown file type {path.suffix!r}; use .csv, .jsonl or .parquet")
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        # Everything as text for CSV so that "NA" or "null" posts stay posts.
        extra = {"keep_default_na": False, "features": _all_text(path)} if kind == "csv" else {}
        try:
            ds = load_dataset(kind, data_files=str(path), split="train", **extra)
        except Exception as e:  # datasets raises many types for a malformed file
            raise DataError(f"{path}: cannot be read as {kind}: {e}") from e
        df = ds.to_pandas()
        rename = {columns.text: "text", columns.intent: "intent",
                  columns.urgency: "urgency", columns.also: "also"}
        missing = [c for c in (columns.text, columns.intent) if c not in df.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; columns are {list(df.columns)}. "
                            "Fix: rename them or map with --text-column / --intent-column")
        df = df.rename(columns={k: v for k, v in rename.items() if k in df.columns and k != v})
        df["source_file"] = str(path)
        df["source_row"] = range(1, len(df) + 1)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    for col in ("urgency", "also", "split"):
        if col not in df.columns:
            df[col] = None
    df["text"] = df["text"].astype(object)
    df["intent"] = df["intent"].map(lambda x: "" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x).strip())
    df["also"] = df["also"].map(_split_also)
    df["split"] = df["split"].map(lambda x: str(x).strip().lower() if isinstance(x, str) and x.strip() else "train")
    return _later_files_win(df)


def _later_files_win(df: pd.DataFrame) -> pd.DataFrame:
    """A post given again in a later file (say, an agent's correction) replaces the earlier row."""
    key = df["text"].map(lambda t: " ".join(str(t).lower().split()) if isinstance(t, str) else None)
    order = df["source_file"].map({name: i for i, name in enumerate(dict.fromkeys(df["source_file"]))})
    replaced = key.notna() & (order < order.groupby(key).transform("max"))
    out = df[~replaced].reset_index(drop=True)
    out.attrs["replaced"] = int(replaced.sum())
    return out


def _all_text(path: Path):
    import csv

    from datasets import Features, Value

    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    return Features({name: Value("string") for name in header})


def _split_also(value) -> list[str]:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return [str(v).strip() for v in list(value) if str(v).strip()]
    return [v.strip() for v in str(value).split(";") if v.strip()]


def parse_urgency(value) -> int | None:
    """0-3, or None for empty; raises ValueError for anything else."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if text == "":
        return None
    number = float(text)
    if number != int(number) or not 0 <= number < URGENCY_LEVELS:
        raise ValueError(text)
    return int(number)


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_posts(df: pd.DataFrame, min_per_class: int = 10, max_listed: int = 20) -> Report:
    """Schema, labels, urgency range, empty and duplicate texts, examples per class."""
    report = Report()
    if df.attrs.get("replaced"):
        report.warnings.append(f"{df.attrs['replaced']} posts were given again in a later file; the later labels are used")
    problems: dict[str, list[str]] = {}

    def add(kind: str, where: str):
        problems.setdefault(kind, []).append(where)

    where = [f"{Path(f).name} row {r}" for f, r in zip(df["source_file"], df["source_row"])]
    seen: dict[str, int] = {}
    for i, row in enumerate(df.itertuples(index=False)):
        text = row.text
        if not isinstance(text, str) or not text.strip():
            add("empty text. Fix: remove the row or fill in the post", where[i])
        else:
            key = " ".join(text.lower().split())
            if key in seen:
                add("duplicate text. Fix: keep one copy of the post", f"{where[i]} (same as {where[seen[key]]})")
            else:
                seen[key] = i
        if not row.intent:
            add("missing intent. Fix: give one of the intents", where[i])
        elif not LABEL_PATTERN.match(row.intent):
            add(f"intent must be lower_snake_case (got {row.intent!r}). Fix: rename the label", where[i])
        try:
            parse_urgency(row.urgency)
        except ValueError:
            add(f"urgency must be 0, 1, 2, 3 or empty (got {row.urgency!r}). Fix: correct the value", where[i])
        for extra in row.also:
            if extra == row.intent:
                add(f"'also' repeats the primary intent {extra!r}. Fix: remove it from also", where[i])
        if row.split not in SPLITS:
            add(f"split must be one of {sorted(SPLITS)} (got {row.split!r}). Fix: correct the value", where[i])

    intents = Counter(df["intent"][df["intent"] != ""])
    for row_where, extras in zip(where, df["also"]):
        for extra in extras:
            if extra not in intents:
                add(f"'also' names {extra!r}, which no row has as its intent. Fix: use a known intent", row_where)
    trainable = Counter(df["intent"][(df["intent"] != "") & (df["split"] != "test")])
    for label in sorted(intents):
        if trainable[label] < min_per_class:
            report.errors.append(f"intent {label!r} has {trainable[label]} training rows; at least "
                                 f"{min_per_class} are needed. Fix: label more posts or merge the intent")
    if len(intents) < 2:
        report.errors.append("fewer than two intents in the data; a classifier needs at least two")
    unknown = sorted(set(intents) - set(GUIDE_INTENTS))
    if unknown:
        report.warnings.append(f"intents outside the labeling guide: {unknown} (fine if you meant to add them)")

    for kind, rows in problems.items():
        listed = ", ".join(rows[:max_listed]) + (f" and {len(rows) - max_listed} more" if len(rows) > max_listed else "")
        report.errors.append(f"{kind}: {listed}")

    urg = df["urgency"].map(_safe_urgency)
    report.counts = {
        "rows": len(df),
        "intent": dict(intents.most_common()),
        "urgency": {str(k): int(v) for k, v in sorted(Counter(urg.dropna().astype(int)).items())},
        "urgency_missing": int(urg.isna().sum()),
        "with_also": int(sum(1 for a in df["also"] if a)),
        "split": dict(Counter(df["split"])),
    }
    for col in ("domain", "channel"):
        if col in df.columns:
            report.counts[col] = dict(Counter(df[col].fillna("")).most_common())
    return report


def _safe_urgency(value):
    try:
        return parse_urgency(value)
    except ValueError:
        return None


MASK = re.compile(r"@\w+|https?://\S+|www\.\S+")


def shingles(text: str, n: int = 3) -> set[str]:
    """Word n-grams with @handles and links masked, so that only the writing counts."""
    words = MASK.sub(" ", text.lower()).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def near_duplicates(texts: list[str], threshold: float = 0.8) -> list[tuple[int, int, float]]:
    """Pairs of texts whose word-3-gram Jaccard similarity is at least `threshold`.

    MinHash LSH proposes candidates; the exact Jaccard decides.
    """
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(t) for t in texts]
    lsh = MinHashLSH(threshold=threshold * 0.9, num_perm=128)
    pairs = []
    for i, s in enumerate(sets):
        if not s:
            continue
        m = MinHash(num_perm=128)
        m.update_batch([g.encode() for g in s])
        for j in lsh.query(m):
            sim = len(s & sets[j]) / len(s | sets[j])
            if sim >= threshold:
                pairs.append((j, i, sim))
        lsh.insert(i, m)
    return pairs
