"""Shared fixtures: small models trained once per test session from the bundled posts."""

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
