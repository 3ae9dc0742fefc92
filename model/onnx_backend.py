"""ONNX Runtime backend: the exported graph, fp32 or int8, with an optional fp32 cascade."""

import os
from pathlib import Path

import numpy as np


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, batch_size: int = 64, max_length: int = 128, precision: str | None = None,
                 threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.precision = precision or os.environ.get("TRIAGE_ONNX_PRECISION", "fp32")
        files = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
        if self.precision not in files:
            raise ValueError(f"ONNX precision must be fp32 or int8, got {self.precision!r}")
        file = path / files[self.precision]
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing; run: python -m training export-onnx --model {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.batch_size = batch_size
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort([len(t) for t in texts], kind="stable")
        logits = np.zeros((len(texts), 0), dtype=np.float32)
        out_l, out_u = [None] * len(texts), [None] * len(texts)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            logits, urgency = self.session.run(None, feed)
            for j, i in enumerate(idx):
                out_l[i], out_u[i] = logits[j], urgency[j]
        return np.stack(out_l), np.stack(out_u)
