"""Corrections from agents (`POST /v1/feedback`), the prediction log, and drift statistics (`GET /v1/stats`)."""

import asyncio
import json
import logging
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from sqlalchemy.exc import SQLAlchemyError

from .db import IdempotencyConflict, Store, now, utc
from .schemas import Correction, Error, Stats, Stored, iso_datetime

log = logging.getLogger("service")
RETRY_AFTER = "5"
MAX_PENDING_LOGS = 1000  # prediction-log writes waiting for the database; past this they are dropped, not queued


class Database:
    """The store plus whether its schema is known to be current; migrations retry until they succeed."""

    def __init__(self, url: str, log_predictions: bool, log_text: bool, dropped_counter):
        self.store = Store(url)
        self.migrated = False
        self.lock = asyncio.Lock()
        self.log_predictions, self.log_text = log_predictions, log_text
        self.pending: set[asyncio.Task] = set()
        self.dropped = dropped_counter

    async def ready(self) -> Store:
        if not self.migrated:
            async with self.lock:
                if not self.migrated:
                    await asyncio.to_thread(self.store.migrate)
                    self.migrated = True
        return self.store

    async def start(self) -> None:
        try:
            await self.ready()
        except SQLAlchemyError as e:
            # Scoring does not need the database: say so and retry on the first feedback request.
            log.error(json.dumps({"event": "database_unavailable", "error": _short(e)}))

    def log(self, posts, results: list[dict]) -> None:
        """Write scored posts in the background; scoring never waits for (or fails with) the database."""
        if not self.log_predictions:
            return
        if len(self.pending) >= MAX_PENDING_LOGS:
            self.dropped.inc(len(results))
            return
        rows = [{"post_id": post.id, "intent": r["intent"], "urgency": r["urgency"]["level"],
                 "confidence": r["scores"][r["intent"]], "scores": r["scores"], "model_version": r["model_version"],
                 "text": post.text if self.log_text else None} for post, r in zip(posts, results)]
        task = asyncio.create_task(self._write(rows))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _write(self, rows: list[dict]) -> None:
        try:
            store = await self.ready()
            await asyncio.to_thread(store.log_predictions, rows)
        except SQLAlchemyError as e:
            self.dropped.inc(len(rows))
            log.warning(json.dumps({"event": "prediction_log_failed", "posts": len(rows), "error": _short(e)}))

    async def close(self) -> None:
        if self.pending:
            await asyncio.wait(self.pending, timeout=10)
        self.store.close()


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:300]


def router(db: Database, labels, api_error) -> APIRouter:
    """`labels()` gives the serving model's label set; `api_error` builds the API's one error shape."""
    r = APIRouter()

    def unavailable(e: Exception):
        log.warning(json.dumps({"event": "database_error", "error": _short(e)}))
        return api_error(503, "database_unavailable", "the feedback database is unavailable; retry later, "
                         "nothing was stored", {"Retry-After": RETRY_AFTER})

    @r.post("/feedback", status_code=201, response_model=Stored, summary="Store an agent's correction of a post",
            responses={200: {"model": Stored, "description": "replay of an earlier request with the same key"},
                       409: {"model": Error, "description": "Idempotency-Key reused for a different correction"}})
    async def feedback(body: Correction,
                       idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
        idempotency_key = (idempotency_key or "").strip() or None  # an empty header is no key
        known = labels()
        for name in [body.intent, *body.also]:
            if name not in known:
                raise api_error(422, "unknown_label", f"{name!r} is not one of the model's intents: {', '.join(known)}")
        if body.intent in body.also:
            raise api_error(422, "unknown_label", f"'also' repeats the primary intent {body.intent!r}")
        predicted = body.predicted
        record = {"post_id": body.post_id, "text": body.text, "intent": body.intent, "also": ";".join(body.also),
                  "urgency": body.urgency, "agent": body.agent, "note": body.note,
                  "predicted_intent": predicted.intent if predicted else None,
                  "predicted_urgency": predicted.urgency if predicted else None,
                  "model_version": predicted.model_version if predicted else None}
        try:
            store = await db.ready()
            stored, created = await asyncio.to_thread(store.add_feedback, record, idempotency_key)
        except IdempotencyConflict as e:
            raise api_error(409, "idempotency_conflict", str(e)) from e
        except SQLAlchemyError as e:
            raise unavailable(e) from e
        body = {**stored, "created_at": stored["created_at"].isoformat(), "replayed": not created}
        return JSONResponse(body, status_code=201 if created else 200)

    @r.get("/stats", response_model=Stats, summary="Scored posts per intent and urgency, and mean confidence, over time")
    async def stats(since: Annotated[datetime | None, BeforeValidator(lambda v: iso_datetime(v, "since")),
                                     Query(description="ISO time; default: 24 hours ago")] = None,
                    bucket: Literal["hour", "day"] = "hour"):
        since = utc(since) if since else now() - timedelta(days=1)
        try:
            store = await db.ready()
            buckets = await asyncio.to_thread(store.stats, since, bucket)
        except SQLAlchemyError as e:
            raise unavailable(e) from e
        return {"since": since, "bucket": bucket, "prediction_log": db.log_predictions, "buckets": buckets}

    return r
