"""Inference backends. Each turns texts into raw intent logits and urgency level probabilities."""

import os
from pathlib import Path

import numpy as np
import torch

from .network import TriageModel, urgency_probs


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, batch_size: int = 64, max_length: int = 128):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = TriageModel.from_pretrained(path).eval()
        self.batch_size = batch_size
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Sorting by length keeps padding small inside each batch.
        order = np.argsort([len(t) for t in texts], kind="stable")
        logits, urgency = [None] * len(texts), [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt")
                out = self.model(**enc)
                u = urgency_probs(out.urgency_logits)
                for j, i in enumerate(idx):
                    logits[i], urgency[i] = out.logits[j].numpy(), u[j].numpy()
        return np.stack(logits), np.stack(urgency)


class SklearnBackend:
    name = "sklearn"

    def __init__(self, path: Path, **_):
        import joblib

        self.intent, self.urgency = joblib.load(path / "sklearn.joblib")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Log-probabilities act as logits: softmax at temperature 1 gives the probabilities back.
        logits = np.log(np.clip(self.intent.predict_proba(texts), 1e-9, 1.0))
        probs = np.zeros((len(texts), 4))
        probs[:, self.urgency.classes_] = self.urgency.predict_proba(texts)
        return logits, probs


def load_backend(name: str, path: Path, threads: int | None = None):
    if threads:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if name == "torch":
        return TorchBackend(path)
    if name == "sklearn":
        return SklearnBackend(path)
    if name == "onnx":
        from .onnx_backend import OnnxBackend

        return OnnxBackend(path, threads=threads)
    raise ValueError(f"unknown backend {name!r}; choose one of torch, onnx, sklearn")
