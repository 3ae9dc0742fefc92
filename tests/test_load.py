"""The load script, short: `python -m eval load` against the real service process."""

import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def load(model, *args, env=None):
    return subprocess.run([sys.executable, "-m", "eval", "load", "--model", str(model), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_short_load_holds(sklearn_model):
    r = load(sklearn_model, "--clients", "8", "--seconds", "5", "--warmup", "1")
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "errors: 0" in r.stdout and "single" in r.stdout and "batch" in r.stdout
    assert "p99" in r.stdout and "growth" in r.stdout and "held" in r.stdout


def test_errors_fail_the_run(sklearn_model):
    # The service inherits the environment: a tight rate limit turns most requests into 429s.
    r = load(sklearn_model, "--clients", "2", "--seconds", "2", "--warmup", "1", env={"TRIAGE_RATE_LIMIT": "1"})
    assert r.returncode == 1 and "requests failed" in r.stderr and "429" in r.stdout
