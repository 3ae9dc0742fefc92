"""All service settings in one place: `TRIAGE_*` environment variables, `.env`, or CLI flags."""

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .db import DEFAULT_URL
from .routing import DEFAULT_RULES


def _split(value):
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    model_dir: Path = Path("models/default")
    routing: Path = DEFAULT_RULES
    workers: int = Field(1, ge=1, le=64)
    backend: str | None = Field(None, description="openvino, torch, onnx or sklearn; default: the model folder's own")
    precision: str | None = Field(None, description="auto, fp32, bf16 (torch, openvino) or int8 (onnx); default: model's")
    cascade_margin: float | None = Field(None, ge=0, le=1, description="re-score close calls in fp32 below this "
                                         "top-two margin; default: the model's")
    threads: int | None = Field(None, ge=1, description="intra-op threads of each inference stream; default: "
                                "the cores shared out over workers and streams")
    inference_streams: int | None = Field(None, ge=1, le=64, description="micro-batches scored at once in each "
                                          "worker; default: 4 with openvino, else 2")
    micro_batch_size: int | None = Field(None, ge=1, le=512, description="default: 4 with openvino, else 8")
    micro_batch_wait_ms: float = Field(3.0, ge=0, le=1000)
    max_batch_posts: int = Field(512, ge=1)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    api_keys: Annotated[list[str], NoDecode] = []
    api_keys_file: Path | None = None
    admin_keys: Annotated[list[str], NoDecode] = []
    cors_origins: Annotated[list[str], NoDecode] = []
    database_url: str = Field(DEFAULT_URL, description="SQLAlchemy URL of the feedback database: a SQLite file, "
                              "or postgresql+psycopg://user@host/db shared by replicas")
    log_predictions: bool = Field(False, description="store every scored post's labels, scores and model version")
    log_prediction_text: bool = Field(False, description="store the post text in the prediction log too")
    rate_limit: float | None = Field(None, gt=0, description="requests a second per API key (per client address "
                                     "when no keys are set); default: no limit")
    rate_limit_burst: int | None = Field(None, ge=1, description="requests a key may send at once; "
                                         "default: one second's worth")
    reload_poll_seconds: float = Field(2.0, ge=0, le=3600, description="how often each process looks in the "
                                       "database for a reload made by another worker or replica; 0: never")
    log_text: bool = Field(False, description="include post text in request logs (debugging only)")

    _split_lists = field_validator("api_keys", "admin_keys", "cors_origins", mode="before")(_split)

    def for_backend(self, backend: str | None) -> "Settings":
        """Streams and micro-batch size, where unset, as measured best for the backend. OpenVINO computes on its
        own threads, so 4 streams of 4 posts keep two batches ready while two compute: 16 clients on 2 cores got
        662-694 posts/s at p99 35-38 ms, against 629-647 posts/s and 38-46 ms with 2 streams of 8; torch lost
        a fifth with 4 of 4 (docs/results.md)."""
        fast = backend == "openvino"
        return self.model_copy(update={"inference_streams": self.inference_streams or (4 if fast else 2),
                                       "micro_batch_size": self.micro_batch_size or (4 if fast else 8)})

    def inference_threads(self) -> int:
        # Two one-thread streams outrun one two-thread stream on small batches (512 against 402 posts/s at 16
        # posts a batch on 2 cores): one thread's matrix work is too small to split well.
        return self.threads or max(1, (os.cpu_count() or 1) // (self.workers * self.inference_streams))

    def scoring_keys(self) -> list[str]:
        keys = list(self.api_keys)
        if self.api_keys_file:
            keys += [k.strip() for k in self.api_keys_file.read_text().splitlines()
                     if k.strip() and not k.startswith("#")]
        return keys
