"""`python -m service`: run the scoring API (flags mirror the TRIAGE_* environment variables)."""

import argparse
import copy
import os
import sys

from pydantic import ValidationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description="Social Triage scoring API.")
    parser.add_argument("--host", help="address to bind (TRIAGE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (TRIAGE_PORT, default 8000)")
    parser.add_argument("--model-dir", help="model folder (TRIAGE_MODEL_DIR, default models/default)")
    parser.add_argument("--routing", help="routing rules YAML (TRIAGE_ROUTING, default: the shipped rules)")
    parser.add_argument("--workers", type=int, help="worker processes (TRIAGE_WORKERS, default 1)")
    parser.add_argument("--backend", help="openvino, torch, onnx or sklearn (TRIAGE_BACKEND, default: the model's)")
    parser.add_argument("--precision", help="auto, fp32, bf16 (torch, openvino) or int8 (onnx) (TRIAGE_PRECISION)")
    parser.add_argument("--cascade-margin", type=float, help="re-score close calls in fp32 (TRIAGE_CASCADE_MARGIN)")
    parser.add_argument("--threads", type=int, help="inference threads per stream (TRIAGE_THREADS)")
    parser.add_argument("--inference-streams", type=int, help="micro-batches scored at once per worker "
                        "(TRIAGE_INFERENCE_STREAMS, default 4 with openvino, else 2)")
    args = parser.parse_args(argv)
    # Flags become environment variables so that every worker process reads the same settings.
    for name, value in vars(args).items():
        if value is not None:
            os.environ[f"TRIAGE_{name.upper()}"] = str(value)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from model import ModelFolderError, read_metadata

    from .routing import Rules, RulesError
    from .settings import Settings

    try:
        settings = Settings()
        meta = read_metadata(settings.model_dir)
        Rules.load(settings.routing).check_labels(meta["labels"])
    except (ValidationError, ModelFolderError, RulesError) as e:
        print(f"error: cannot start: {e}", file=sys.stderr)
        return 2
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    # The service's JSON lines on stdout. Through uvicorn's log_config, not logging.basicConfig here: uvicorn
    # applies it again in each worker process, which starts fresh and would otherwise drop them.
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["formatters"]["plain"] = {"format": "%(message)s"}
    log_config["handlers"]["plain"] = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}
    log_config["root"] = {"handlers": ["plain"], "level": "INFO"}
    uvicorn.run("service.app:create_app", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, log_level="warning", log_config=log_config, timeout_graceful_shutdown=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
