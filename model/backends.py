"""Inference backends. Each turns texts into raw intent logits and urgency level probabilities.

`torch` (fp32 reference, or bf16), `onnx` (ONNX Runtime, fp32 or int8, exported by `python -m training
export-onnx`), `openvino` (the same fp32 graph compiled by OpenVINO, fp32 or bf16) and `sklearn` (the TF-IDF
baseline). A low-precision backend can run as a cascade: every post goes
through the fast graph, and the close calls (top-two margin under `margin`, intent or urgency) are
scored again in fp32, so answers stay those of fp32 on nearly every post at close to the fast speed.
"""

import functools
import time
from pathlib import Path

import numpy as np
import torch

from .calibration import MEDIAN, p_above, softmax
from .network import load_network, urgency_probs

PRECISIONS = {"torch": ("fp32", "bf16"), "onnx": ("fp32", "int8"), "openvino": ("fp32", "bf16"), "sklearn": ("fp32",)}


def in_length_order(texts, batch_size, run):
    """Run `run` over batches of similar length (less padding); results in the input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out_l, out_u = [None] * len(texts), [None] * len(texts)
    for start in range(0, len(texts), batch_size):
        idx = order[start:start + batch_size]
        logits, urgency = run([texts[i] for i in idx])
        for j, i in enumerate(idx):
            out_l[i], out_u[i] = logits[j], urgency[j]
    return np.stack(out_l), np.stack(out_u)


class TorchBackend:
    name = "torch"

    def __init__(self, path: Path, precision: str = "fp32", batch_size: int = 64, max_length: int = 128):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = load_network(path).eval()
        if precision == "bf16":
            self.model.to(torch.bfloat16)
        self.precision = precision
        self.batch_size = batch_size
        self.max_length = max_length

    def _run(self, texts: list[str]):
        # Lengths padded to a multiple of 16: the kernels keep buffers for every input shape they meet, and
        # with every length from 1 to 128 a long-running service grew by hundreds of MB (eval load).
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             pad_to_multiple_of=16, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**enc)
            return out.logits.float().numpy(), urgency_probs(out.urgency_logits.float()).numpy()

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return in_length_order(texts, self.batch_size, self._run)


class SklearnBackend:
    name = "sklearn"
    precision = "fp32"

    def __init__(self, path: Path, **_):
        import joblib

        self.intent, self.urgency = joblib.load(path / "sklearn.joblib")

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        # Log-probabilities act as logits: softmax at temperature 1 gives the probabilities back.
        logits = np.log(np.clip(self.intent.predict_proba(texts), 1e-9, 1.0))
        if self.urgency is None:  # trained without urgency labels: no opinion
            return logits, np.full((len(texts), 4), 0.25)
        probs = np.zeros((len(texts), 4))
        probs[:, self.urgency.classes_] = self.urgency.predict_proba(texts)
        return logits, probs


def intent_margin(p: np.ndarray) -> np.ndarray:
    """The gap between the two most likely intents: the argmax flips only if noise closes it."""
    top2 = np.sort(p, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def urgency_margin(p: np.ndarray, cuts=MEDIAN) -> np.ndarray:
    """Twice the distance of the nearest P(level > k) from its cut.

    The level flips only where one of them crosses its cut (`urgency_level`). The gap between the two
    likeliest levels, used before, re-scored 30% of real tweets at margin 0.2 where this re-scores 18%
    and keeps as many answers (docs/results.md).
    """
    return 2 * np.abs(p_above(p) - np.asarray(cuts)).min(axis=1)


class Cascade:
    """The fast backend for every post, the exact one again for the close calls."""

    def __init__(self, fast, exact, margin: float, temperature: float = 1.0, cuts=MEDIAN):
        self.fast, self.exact, self.margin, self.temperature, self.cuts = fast, exact, margin, temperature, cuts
        self.name, self.precision = fast.name, f"{fast.precision}+fp32"
        self.rescored = 0  # posts scored again, for benchmarks

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        logits, urgency = self.fast(texts)
        close = np.flatnonzero((intent_margin(softmax(logits, self.temperature)) < self.margin)
                               | (urgency_margin(urgency, self.cuts) < self.margin))
        if len(close):
            logits[close], urgency[close] = self.exact([texts[i] for i in close])
            self.rescored += len(close)
        return logits, urgency

    def warm_up(self, max_batch: int) -> None:
        """Warm up whichever of the two compiles kernels per input shape (OpenVINO)."""
        for backend in (self.fast, self.exact):
            if hasattr(backend, "warm_up"):
                backend.warm_up(max_batch)


def fast_bf16() -> bool:
    """Whether bf16 matmuls run faster than fp32 here: the CPU has AMX or AVX512-BF16, and timing says so.

    The flags alone mislead both ways. oneDNN's own check says yes on plain AVX-512, where bf16 is
    emulated (a 2-core Xeon: 28 GFLOP/s in bf16 against 120 in fp32), and a Xeon with AVX512-BF16 but no
    AMX (family 6, model 207) ran 168 against 312; an AMD EPYC with AVX512-BF16 ran 417 against 170.
    """
    cpu = torch.cpu
    flags = any(getattr(cpu, check, lambda: False)() for check in ("_is_amx_tile_supported",
                                                                      "_is_avx512_bf16_supported"))
    return flags and bf16_speedup() > 1.2


@functools.cache
def bf16_speedup() -> float:
    """fp32 time over bf16 time of one model-sized matmul (an FFN layer over 256 tokens); about 20 ms."""
    a, b = torch.randn(256, 384), torch.randn(384, 1536)

    def best(x, y):
        x @ y
        times = []
        for _ in range(5):
            start = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - start)
        return min(times)

    return best(a, b) / best(a.bfloat16(), b.bfloat16())


def resolve_precision(name: str, precision: str) -> str:
    """`auto`: bf16 (torch, openvino) where the CPU multiplies bf16 faster than fp32, else fp32."""
    if precision != "auto":
        return precision
    return "bf16" if "bf16" in PRECISIONS.get(name, ()) and fast_bf16() else "fp32"


def load_backend(name: str, path: Path, threads: int | None = None, precision: str = "fp32",
                 margin: float = 0.0, temperature: float = 1.0, cuts=MEDIAN):
    """`margin` > 0 with bf16 or int8: a Cascade, its margins read on what the predictor reports (intent
    probabilities at `temperature`, urgency against the model's `cuts`)."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(PRECISIONS)}")
    precision = resolve_precision(name, precision)
    if precision not in PRECISIONS[name]:
        raise ValueError(f"backend {name!r} runs in {' or '.join(PRECISIONS[name])}, not {precision!r}")
    if threads:
        torch.set_num_threads(threads)
    if name == "sklearn":
        return SklearnBackend(path)
    if name == "torch":
        make = lambda p: TorchBackend(path, precision=p)  # noqa: E731
    elif name == "openvino":
        from .openvino_backend import OpenVinoBackend

        make = lambda p: OpenVinoBackend(path, precision=p, threads=threads)  # noqa: E731
    else:
        from .onnx_backend import OnnxBackend

        make = lambda p: OnnxBackend(path, precision=p, threads=threads)  # noqa: E731
    if precision != "fp32" and margin > 0:
        return Cascade(make(precision), make("fp32"), margin, temperature, cuts)
    return make(precision)
