"""ONNX Runtime backend: the exported graph (both heads) in fp32 or int8."""

import os
from pathlib import Path

import numpy as np

from .backends import in_length_order

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


def encode(tokenizer, texts: list[str], max_length: int, pad_to_multiple_of: int | None = None) -> dict:
    """The exported graph's inputs (int64 arrays) for a batch of texts; ONNX Runtime and OpenVINO share it."""
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length,
                    pad_to_multiple_of=pad_to_multiple_of, return_tensors="np")
    return {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}


class OnnxBackend:
    name = "onnx"

    def __init__(self, path: Path, precision: str = "fp32", threads: int | None = None, batch_size: int = 64,
                 max_length: int = 128):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        file = path / FILES[precision]
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing; run: python -m training export-onnx --model {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.precision = precision
        self.batch_size = batch_size
        self.max_length = max_length

    def _run(self, texts: list[str]):
        return self.session.run(None, encode(self.tokenizer, texts, self.max_length))

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return in_length_order(texts, self.batch_size, self._run)
