"""OpenVINO backend: the exported ONNX graph (model.onnx, both heads) compiled by OpenVINO for this CPU.

In bf16 it runs the matrix work on AMX or AVX512-BF16 and fuses attention, layer norms and GELU, which
torch and ONNX Runtime run as separate memory-bound steps.
"""

import os
import threading
from pathlib import Path

import numpy as np

from .backends import in_length_order
from .onnx_backend import FILES, encode


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, path: Path, precision: str = "fp32", threads: int | None = None, batch_size: int = 64,
                 max_length: int = 128):
        import openvino as ov
        from transformers import AutoTokenizer

        file = path / FILES["fp32"]
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing; run: python -m training export-onnx --model {path}")
        cores = os.cpu_count() or 1
        threads = threads or cores
        # One stream per share of the cores: the service scores up to `cores // threads` batches at once, each
        # on its own infer request, and OpenVINO runs each stream on its own threads.
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "NUM_STREAMS": max(1, cores // threads), "INFERENCE_NUM_THREADS": max(threads, cores)}
        self.compiled = ov.Core().compile_model(str(file), "CPU", config)
        self.requests = threading.local()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.precision = precision
        self.batch_size = batch_size
        self.max_length = max_length

    def _run(self, texts: list[str]):
        request = getattr(self.requests, "request", None)
        if request is None:  # an infer request serves one thread at a time
            request = self.requests.request = self.compiled.create_infer_request()
        # Lengths padded to a multiple of 16, as in the torch backend: fewer shapes to compile kernels for.
        out = request.infer(encode(self.tokenizer, texts, self.max_length, pad_to_multiple_of=16))
        return [np.array(out[o], dtype=np.float32) for o in self.compiled.outputs]

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return in_length_order(texts, self.batch_size, self._run)

    def warm_up(self, max_batch: int, lengths=(16, 32, 48, 64)) -> None:
        """Run every batch size up to `max_batch` at the padded lengths of most posts (64 tokens hold 99% of
        real tweets). OpenVINO prepares its kernels per input shape on first sight: a batch of a new shape
        took 15-25 ms against 6-10 ms after, a spike the first clients would otherwise pay."""
        request = self.compiled.create_infer_request()
        for size in range(1, max_batch + 1):
            for length in lengths:
                ones = np.ones((size, length), dtype=np.int64)
                request.infer({"input_ids": ones, "attention_mask": ones, "token_type_ids": 0 * ones})
