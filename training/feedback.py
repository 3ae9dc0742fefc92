"""Agents' corrections from the service's database, in the labeling format the trainer reads."""

from datetime import datetime
from pathlib import Path

import pandas as pd

from .data import FORMATS

COLUMNS = ["id", "text", "intent", "also", "urgency", "source", "agent", "corrected_at", "model_version"]


def export_feedback(url: str, out: Path, since: datetime | None = None) -> pd.DataFrame:
    """Write one row per corrected post (the latest correction wins) to CSV, JSON Lines or Parquet."""
    from service.db import Store, utc

    kind = FORMATS.get(out.suffix.lower())
    if kind is None:
        raise ValueError(f"{out}: unknown file type {out.suffix!r}; use .csv, .jsonl or .parquet")
    store = Store(url)
    try:
        rows = store.feedback(utc(since) if since else None)
    finally:
        store.close()
    latest: dict[str, dict] = {}
    for f in rows:  # oldest first: a later correction of the same post replaces the earlier one
        key = f"id:{f.post_id}" if f.post_id else "text:" + " ".join(f.text.lower().split())
        latest.pop(key, None)
        latest[key] = {"id": f.post_id or f"feedback-{f.id}", "text": f.text, "intent": f.intent, "also": f.also,
                       "urgency": "" if f.urgency is None else f.urgency, "source": "feedback", "agent": f.agent,
                       "corrected_at": utc(f.created_at).isoformat(), "model_version": f.model_version}
    df = pd.DataFrame(list(latest.values()), columns=COLUMNS)
    out.parent.mkdir(parents=True, exist_ok=True)
    {"csv": lambda: df.to_csv(out, index=False), "parquet": lambda: df.to_parquet(out, index=False),
     "json": lambda: df.to_json(out, orient="records", lines=True, force_ascii=False)}[kind]()
    return df
