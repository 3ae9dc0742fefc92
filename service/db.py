"""Where corrections and the optional prediction log live: SQLAlchemy 2 tables, Alembic migrations, queries.

SQLite by default (a file, nothing to install); PostgreSQL when several replicas share one database.
Everything here is blocking: the API calls it through `asyncio.to_thread`.
"""

import contextlib
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, BigInteger, DateTime, Float, Integer, String, Text, create_engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DEFAULT_URL = "sqlite:///triage.db"
MIGRATIONS = Path(__file__).parent / "migrations"
# SQLite counts only INTEGER PRIMARY KEY as an auto-increment row id.
Id = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


class Feedback(Base):
    """One agent's correction of one post, in the labeling guide's terms."""
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    post_id: Mapped[str | None] = mapped_column(String(128), index=True)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(40))
    also: Mapped[str] = mapped_column(String(400), default="")  # ';'-separated, as in the file format
    urgency: Mapped[int | None] = mapped_column(Integer)
    predicted_intent: Mapped[str | None] = mapped_column(String(40))
    predicted_urgency: Mapped[int | None] = mapped_column(Integer)
    agent: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    model_version: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Prediction(Base):
    """One scored post, for watching drift: what the model said, when, with which version."""
    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    post_id: Mapped[str | None] = mapped_column(String(128))
    intent: Mapped[str] = mapped_column(String(40))
    urgency: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float] = mapped_column(Float)
    scores: Mapped[dict] = mapped_column(JSON)
    model_version: Mapped[str] = mapped_column(String(128))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Reload(Base):
    """A model swapped in by hot reload. Every process sharing the database follows the newest row."""
    __tablename__ = "reloads"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    model_dir: Mapped[str] = mapped_column(String(1000))
    version: Mapped[str] = mapped_column(String(128))
    configured_dir: Mapped[str] = mapped_column(String(1000))  # TRIAGE_MODEL_DIR of the process that reloaded
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyConflict(ValueError):
    """The key was used before for a different correction."""


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Store:
    def __init__(self, url: str = DEFAULT_URL):
        self.url = url
        sqlite = url.startswith("sqlite")
        self.engine = create_engine(url, pool_pre_ping=True,
                                    connect_args={"timeout": 30} if sqlite else {"connect_timeout": 5})
        if sqlite:
            # WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing.
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _):
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=30000")

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (safe when several replicas start at once)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(72616765)"))  # one migrator at a time
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def _migration_lock(self):
        """SQLite has no advisory lock: workers starting together on one file take turns through a lock file."""
        database = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not database or database == ":memory:" or not Path(database).parent.is_dir():
            return contextlib.nullcontext()  # (a lock file would create the missing folder; let SQLite say it)
        from filelock import FileLock

        return FileLock(f"{database}.migrate.lock", timeout=60)

    def add_feedback(self, record: dict, key: str | None = None) -> tuple[dict, bool]:
        """Store a correction once. Returns (stored row, created); a repeated key returns the first row."""
        digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
        with Session(self.engine) as session:
            if key:
                found = self._by_key(session, key, digest)
                if found:
                    return found, False
            row = Feedback(idempotency_key=key, request_hash=digest, created_at=now(), **record)
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                # Another request with the same key won the race: answer with its row.
                session.rollback()
                found = self._by_key(session, key, digest) if key else None
                if not found:
                    raise
                return found, False
            return self._public(row), True

    def _by_key(self, session: Session, key: str, digest: str) -> dict | None:
        row = session.scalar(select(Feedback).where(Feedback.idempotency_key == key))
        if row is None:
            return None
        if row.request_hash != digest:
            raise IdempotencyConflict("this Idempotency-Key was already used for a different correction")
        return self._public(row)

    @staticmethod
    def _public(row: Feedback) -> dict:
        return {"id": row.id, "post_id": row.post_id, "created_at": utc(row.created_at)}

    def feedback(self, since: datetime | None = None) -> list[Feedback]:
        """Corrections oldest first (so that, read in order, later ones win)."""
        query = select(Feedback).order_by(Feedback.created_at, Feedback.id)
        if since:
            query = query.where(Feedback.created_at >= since)
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def record_reload(self, model_dir: str, version: str, configured_dir: str) -> int:
        with Session(self.engine) as session, session.begin():
            row = Reload(model_dir=model_dir, version=version, configured_dir=configured_dir, created_at=now())
            session.add(row)
            session.flush()
            return row.id

    def latest_reload(self) -> dict | None:
        with Session(self.engine) as session:
            row = session.scalar(select(Reload).order_by(Reload.id.desc()).limit(1))
            return None if row is None else {"id": row.id, "model_dir": row.model_dir, "version": row.version,
                                             "configured_dir": row.configured_dir}

    def log_predictions(self, rows: list[dict]) -> None:
        stamp = now()
        with Session(self.engine) as session, session.begin():
            session.add_all(Prediction(created_at=stamp, **r) for r in rows)

    def stats(self, since: datetime, bucket: str) -> list[dict]:
        """Posts per intent and urgency level, and mean confidence, per hour or day since `since`."""
        col = Prediction.created_at
        if self.engine.dialect.name == "postgresql":
            start = func.date_trunc(bucket, func.timezone("UTC", col))
        else:
            start = func.strftime("%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00", col)
        query = (select(start.label("start"), Prediction.intent, Prediction.urgency,
                        func.count().label("n"), func.sum(Prediction.confidence).label("conf"))
                 .where(col >= since).group_by(start, Prediction.intent, Prediction.urgency).order_by(start))
        buckets: dict[str, dict] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                begin = row.start if isinstance(row.start, datetime) else datetime.fromisoformat(row.start)
                b = buckets.setdefault(utc(begin).isoformat(), {"posts": 0, "intent": {}, "urgency": {}, "conf": 0.0})
                b["posts"] += row.n
                b["conf"] += row.conf
                b["intent"][row.intent] = b["intent"].get(row.intent, 0) + row.n
                b["urgency"][str(row.urgency)] = b["urgency"].get(str(row.urgency), 0) + row.n
        return [{"start": k, "posts": b["posts"], "intent": b["intent"], "urgency": b["urgency"],
                 "mean_confidence": round(b["conf"] / b["posts"], 4)} for k, b in buckets.items()]

    def close(self) -> None:
        self.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """`python -m service.db [URL]`: run the migrations now (the service also runs them at start)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m service.db", description="Create or upgrade the database schema.")
    parser.add_argument("url", nargs="?", default=os.environ.get("TRIAGE_DATABASE_URL", DEFAULT_URL),
                        help="SQLAlchemy URL (default: TRIAGE_DATABASE_URL or sqlite:///triage.db)")
    args = parser.parse_args(argv)
    Store(args.url).migrate()
    print(f"database at the newest schema: {args.url.split('@')[-1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
