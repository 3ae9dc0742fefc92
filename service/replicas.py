"""Hot reload on every process: a reload is recorded in the database, and every worker of every replica
that shares the database loads the same folder within `reload_poll_seconds`.

A reload outlives restarts while the configured folder (TRIAGE_MODEL_DIR) stays what it was when the reload
was made; change the configured folder and the configuration wins again.
"""

import asyncio
import json
import logging
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("service")


class Follower:
    def __init__(self, db, configured_dir: Path, interval: float, swap, current):
        """`swap(path)` loads, checks and serves a folder, raising when it cannot; `current()` is the version
        in service (None before the first load)."""
        self.db, self.configured, self.interval = db, str(configured_dir), interval
        self.swap, self.current = swap, current
        self.seen: int | None = None  # id of the newest reload acted on; None until the database answers
        self.task: asyncio.Task | None = None

    async def _latest(self) -> dict | None:
        store = await self.db.ready()
        return await asyncio.to_thread(store.latest_reload)

    def _choose(self, record: dict | None) -> Path:
        """The folder to serve given the newest reload, on first hearing of it."""
        self.seen = record["id"] if record else 0
        if record and record["configured_dir"] == self.configured:
            return Path(record["model_dir"])
        return Path(self.configured)

    async def start_dir(self, timeout: float = 10.0, announce: bool = True) -> Path:
        """The folder to load at start: the last reload's when there is one over this configured folder."""
        if self.interval <= 0:
            return Path(self.configured)
        try:
            path = self._choose(await asyncio.wait_for(self._latest(), timeout))
        except (SQLAlchemyError, TimeoutError) as e:
            log.warning(json.dumps({"event": "reloads_unknown", "error": str(e).splitlines()[0][:300],
                                    "model_dir": self.configured}))
            return Path(self.configured)
        if announce and str(path) != self.configured:
            log.info(json.dumps({"event": "following_reload", "model_dir": str(path), "configured": self.configured}))
        return path

    async def record(self, path: Path, version: str) -> bool:
        """Tell the other processes; False when the database cannot be reached (this process still swapped)."""
        try:
            store = await self.db.ready()
            self.seen = await asyncio.to_thread(store.record_reload, str(path), version, self.configured)
            return True
        except SQLAlchemyError as e:
            log.warning(json.dumps({"event": "reload_not_shared", "error": str(e).splitlines()[0][:300]}))
            return False

    def start(self, adopt: bool) -> None:
        """Poll for reloads. `adopt`: on first hearing of the database, serve its reload as at start
        (for a process that started without it); otherwise only later reloads are followed."""
        if self.interval > 0:
            self.task = asyncio.create_task(self._run(adopt))

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()

    async def _run(self, adopt: bool) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                record = await self._latest()
            except Exception:  # the database is down: said at start or by the feedback routes; scoring goes on
                continue
            if record is None or (self.seen is not None and record["id"] <= self.seen):
                self.seen = self.seen or 0
                continue
            first, self.seen = self.seen is None, record["id"]
            if first and not (adopt and record["configured_dir"] == self.configured):
                continue
            if record["version"] == self.current():
                continue
            path = Path(record["model_dir"])
            try:
                await self.swap(path)
                log.info(json.dumps({"event": "reload_followed", "model_dir": str(path), "version": self.current()}))
            except Exception as e:  # keep serving the model in hand; the next reload is another chance
                log.error(json.dumps({"event": "reload_follow_failed", "model_dir": str(path), "error": str(e)}))
