"""Shared fixtures: small models trained once per test session from the bundled posts."""

import os
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Apps made by tests keep their feedback database out of the working tree.
os.environ.setdefault("TRIAGE_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='triage-test-')}/triage.db")
POSTGRES = os.environ.get("TRIAGE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

ROOT = Path(__file__).resolve().parents[1]
POSTS = ROOT / "data" / "posts.csv"
DEFAULT_MODEL = ROOT / "models" / "default"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_posts(tmp_path_factory) -> Path:
    """A stratified sample of the bundled posts: enough to train in seconds."""
    df = pd.read_csv(POSTS, keep_default_na=False)
    sample = df.groupby("intent").sample(40, random_state=0)
    path = tmp_path_factory.mktemp("data") / "small.csv"
    sample.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, small_posts) -> Path:
    """A transformer model trained for one short epoch: a real folder, not a good model."""
    from training.args import TrainArgs
    from training.train import train

    out = tmp_path_factory.mktemp("models") / "tiny"
    train(TrainArgs(data=[str(small_posts)], out=str(out), epochs=1, batch_size=16, max_length=48))
    return out


@pytest.fixture(scope="session")
def sklearn_model(tmp_path_factory, small_posts) -> Path:
    from training.args import TrainArgs
    from training.train import train

    out = tmp_path_factory.mktemp("models") / "sk"
    train(TrainArgs(data=[str(small_posts)], out=str(out), backend="sklearn"))
    return out


@pytest.fixture(scope="session")
def default_model() -> Path:
    if not (DEFAULT_MODEL / "triage.json").is_file():
        pytest.skip("models/default is missing: run `make model`")
    return DEFAULT_MODEL


def postgres_database():
    """A throw-away PostgreSQL database: yields its URL, drops it afterwards.

    Skips when no server answers, unless TRIAGE_TEST_REQUIRE_POSTGRES=1 (CI), where that is a failure.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})
    name = f"triage_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as e:
        admin.dispose()
        if os.environ.get("TRIAGE_TEST_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES.split('@')[-1]}: {str(e).splitlines()[0]}")
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each test that takes it runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/triage.db"
    else:
        yield from postgres_database()
