"""`python -m eval bench`: speed on this machine, on real posts, against a plain transformers pipeline.

All load goes to 127.0.0.1, bounded in requests and seconds.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from model import Predictor

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def bench_texts(limit: int = 2000) -> tuple[list[str], str]:
    """Real tweets when ../shared/data is there, else the bundled test split."""
    source = SHARED / "complaints-acl2019.csv"
    if source.is_file():
        texts = pd.read_csv(source, keep_default_na=False)["text"].tolist()
    else:
        source = ROOT / "data" / "posts.csv"
        df = pd.read_csv(source, keep_default_na=False)
        texts = df.loc[df["split"] == "test", "text"].tolist()
    rng = np.random.default_rng(0)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    while len(texts) < limit:
        texts += texts
    return texts[:limit], str(source)


def summarize(name: str, latencies: list[float], posts: int, seconds: float, **extra) -> dict:
    ms = np.array(latencies) * 1000
    return {"name": name, "posts_per_s": posts / seconds, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)), "posts": posts, **extra}


def time_single(fn, texts: list[str]) -> tuple[list[float], float]:
    fn(texts[:5])  # warm-up
    latencies, started = [], time.perf_counter()
    for t in texts:
        t0 = time.perf_counter()
        fn([t])
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - started


def time_batched(fn, texts: list[str], batch: int) -> tuple[list[float], float]:
    fn(texts[:batch])
    latencies, started = [], time.perf_counter()
    for i in range(0, len(texts), batch):
        t0 = time.perf_counter()
        fn(texts[i:i + batch])
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - started


def bench_pipeline(model_dir: Path, texts: list[str], n_single: int, batch: int) -> list[dict]:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(model_dir), device="cpu")
    lat, secs = time_single(lambda x: clf(x), texts[:n_single])
    rows = [summarize("transformers.pipeline, one post at a time", lat, len(lat), secs)]
    lat, secs = time_batched(lambda x: clf(x, batch_size=batch), texts, batch)
    rows.append(summarize(f"transformers.pipeline, batch {batch}", lat, len(texts), secs))
    return rows


def agreement(reference: list[dict], other: list[dict]) -> dict:
    return {"intent_agreement": float(np.mean([a["intent"] == b["intent"] for a, b in zip(reference, other)])),
            "urgency_agreement": float(np.mean([a["urgency"] == b["urgency"] for a, b in zip(reference, other)]))}


def bench_predictor(model_dir: Path, texts: list[str], n_single: int, batch: int, variants: list[tuple],
                    threads: int | None) -> list[dict]:
    """Each variant one post at a time and batched, with its agreement with the first variant."""
    rows, reference = [], None
    for backend, precision, margin in variants:
        p = Predictor.from_pretrained(model_dir, backend=backend, threads=threads, precision=precision,
                                      margin=margin)
        label = p.backend_name + (f" (margin {margin})" if margin else "")
        preds = p.predict(texts)
        reference = reference or preds
        agree = agreement(reference, preds)
        if margin:
            agree["rescored"] = p.backend.rescored / len(texts)
        lat, secs = time_single(p.predict, texts[:n_single])
        rows.append(summarize(f"predictor {label}, one post", lat, len(lat), secs, **agree))
        lat, secs = time_batched(p.predict, texts, batch)
        rows.append(summarize(f"predictor {label}, batch {batch}", lat, len(texts), secs, **agree,
                              variant=[backend, precision, margin]))
    return rows


def bench_streams(model_dir: Path, texts: list[str], variant: tuple, streams: int, batch: int) -> dict:
    """Batches scored by `streams` threads at once, each with its share of the cores (as the service does)."""
    import threading

    import torch

    backend, precision, margin = variant
    before = torch.get_num_threads()
    threads = max(1, (os.cpu_count() or 1) // streams)
    p = Predictor.from_pretrained(model_dir, backend=backend, threads=threads, precision=precision, margin=margin)
    chunks = [texts[i:i + batch] for i in range(0, len(texts), batch)]
    p.predict(chunks[0])
    latencies = []

    def work(part):
        for chunk in part:
            t0 = time.perf_counter()
            p.predict(chunk)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(chunks[k::streams],)) for k in range(streams)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - started
    torch.set_num_threads(before)
    return summarize(f"predictor {p.backend_name}, {streams} streams of {threads} thread(s), batch {batch}",
                     latencies, len(texts), seconds, variant=list(variant))


# ---- HTTP load: a small keep-alive HTTP/1.1 client, so the load generator costs little CPU --------------
class Connection:
    def __init__(self, port: int, headers: dict[str, str] | None = None):
        self.port = port
        self.reader = self.writer = None
        self.headers = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in (headers or {}).items())

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + self.headers +
                          b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                          + b"\r\n\r\n" + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer:
            self.writer.close()
        self.reader = self.writer = None


async def _load(port: int, bodies: list[bytes], path: str, concurrency: int, max_seconds: float):
    queue = list(reversed(bodies))
    latencies, errors = [], 0
    deadline = time.perf_counter() + max_seconds

    async def client():
        nonlocal errors
        conn = Connection(port)
        while queue and time.perf_counter() < deadline:
            body = queue.pop()
            t0 = time.perf_counter()
            status, _ = await conn.post(path, body)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200
        if conn.writer:
            conn.writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_http(model_dir: Path, texts: list[str], variant: tuple, requests: int, batch: int,
               max_seconds: float, threads: int | None) -> list[dict]:
    port = free_port()
    backend, precision, margin = variant
    env = {**os.environ, "TRIAGE_MODEL_DIR": str(model_dir), "TRIAGE_PORT": str(port),
           "TRIAGE_BACKEND": backend, "TRIAGE_PRECISION": precision, "TRIAGE_CASCADE_MARGIN": str(margin)}
    if threads:
        env["TRIAGE_THREADS"] = str(threads)
    server = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows = []
    try:
        wait_ready(port, server)
        singles = [json.dumps({"text": t}).encode() for t in texts]
        asyncio.run(_load(port, singles[:50], "/v1/score", 4, 30))  # warm-up
        for concurrency in (1, 16, 64):
            n = requests // 4 if concurrency == 1 else requests
            lat, secs, errors = asyncio.run(_load(port, singles[:n], "/v1/score", concurrency, max_seconds))
            rows.append(summarize(f"HTTP /v1/score, {concurrency} concurrent clients", lat, len(lat), secs,
                                  errors=errors))
            print(f"  {rows[-1]['name']}: {rows[-1]['posts_per_s']:.0f} posts/s", flush=True)
        bodies = [json.dumps({"posts": [{"text": t} for t in texts[i:i + batch]]}).encode()
                  for i in range(0, len(texts), batch)]
        lat, secs, errors = asyncio.run(_load(port, bodies, "/v1/score/batch", 2, max_seconds))
        rows.append(summarize(f"HTTP /v1/score/batch, {batch} posts a request, 2 clients", lat,
                              len(lat) * batch, secs, errors=errors))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    """Until GET /ready answers 200; raises with the server's output if it exits first."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            output = server.stderr.read() if server.stderr else ""
            raise RuntimeError(f"the service exited: {output[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the service did not become ready in time")


def print_table(result: dict) -> None:
    base = result["rows"][0]["posts_per_s"]
    print(f"\nbench on {result['texts']} posts from {result['source']} ({result['cpus']} CPUs); "
          f"HTTP service: {result['service']}")
    print(f"{'':<58}{'posts/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'x base':>8}{'agree':>14}")
    for r in result["rows"]:
        agree = (f"{100 * r['intent_agreement']:.2f}/{100 * r['urgency_agreement']:.2f}%"
                 if "intent_agreement" in r else "")
        errors = f"  errors {r['errors']}" if r.get("errors") else ""
        print(f"{r['name']:<58}{r['posts_per_s']:>9.0f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}"
              f"{r['posts_per_s'] / base:>7.1f}x{agree:>14}{errors}")
    print("x base: posts/s over the plain pipeline one post at a time; agree: intent/urgency agreement with "
          "the torch fp32 predictor")
    http16 = next((r for r in result["rows"] if r["name"].startswith("HTTP /v1/score, 16 ")), None)
    served = [r for r in result["rows"] if r.get("variant") == result["service_variant"]]
    if http16 and served:
        best = max(served, key=lambda r: r["posts_per_s"])
        print(f"\nHTTP, 16 clients of single posts: {http16['posts_per_s']:.0f} posts/s, "
              f"{100 * http16['posts_per_s'] / best['posts_per_s']:.0f}% of the best in-process batch run of the "
              f"service's backend ({best['name']}: {best['posts_per_s']:.0f} posts/s); "
              f"{http16['posts_per_s'] / base:.1f}x the plain pipeline one post at a time; p99 {http16['p99_ms']:.1f} ms")


# ---- batch scoring: the Ray Data job against a plain loop over the predictor ---------------------------------
BATCH_SOURCES = ("dev-intents.csv", "complaints-acl2019.csv")


def batch_texts(limit: int) -> list[str] | None:
    """Real tweets from ../shared/data, repeated to `limit`; None where the folder is absent."""
    files = [SHARED / name for name in BATCH_SOURCES]
    if not all(f.is_file() for f in files):
        return None
    texts = [t for f in files for t in pd.read_csv(f, keep_default_na=False)["text"]]
    return [texts[i % len(texts)] for i in range(limit)]


def bench_batch(model_dir: Path, texts: list[str], work: Path, batch_size: int, block_rows: int, threads: int,
                actors: int | None, num_cpus: int | None, backend: str | None, precision: str | None) -> dict:
    """The same input scored by `python -m service.batch`'s Ray job and by one process looping over the
    predictor (same reading, checking, result fields, backend, precision and batch size); each wall time
    includes loading the model, and Ray's includes starting Ray."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from service.batch import Columns, Options, check_posts, iter_blocks, part_name, run, score_table
    from service.routing import DEFAULT_RULES, Rules

    source = work / "in" / "posts.csv"
    source.parent.mkdir(parents=True)
    pd.DataFrame({"id": [f"t{i}" for i in range(len(texts))], "text": texts}).to_csv(source, index=False)
    rules = Rules.load()

    options = Options(model_dir=model_dir, routing=DEFAULT_RULES, backend=backend, precision=precision, threads=threads,
                      actors=actors, num_cpus=num_cpus, batch_size=batch_size, block_rows=block_rows)
    started = time.perf_counter()
    summary = run(source.parent, work / "ray", options)
    ray_seconds = time.perf_counter() - started
    if summary["written_blocks"] != summary["blocks"]:
        raise RuntimeError(f"the Ray job wrote {summary['written_blocks']} of {summary['blocks']} blocks")

    started = time.perf_counter()
    p = Predictor.from_pretrained(model_dir, backend=backend, precision=precision)
    pieces = []
    for block, frame in iter_blocks(source, block_rows, Columns()):
        checked = check_posts(frame, Columns(), source.name, part_name(source.name, block), len(frame))
        for start in range(0, len(checked), batch_size):
            pieces.append(score_table(checked.slice(start, batch_size), p, rules))
    plain = pa.concat_tables(pieces).drop_columns(["_part", "_rows"])
    pq.write_table(plain, work / "plain.parquet")
    plain_seconds = time.perf_counter() - started

    by_ray = dict(zip(*pq.read_table(work / "ray", columns=["id", "intent"]).to_pydict().values()))
    agree = float(np.mean([by_ray[i] == intent for i, intent in zip(plain["id"].to_pylist(),
                                                                     plain["intent"].to_pylist())]))
    return {"posts": len(texts), "cpus": os.cpu_count(), "backend": p.backend_name, "batch_size": batch_size,
            "block_rows": block_rows, "model_version": p.version,
            "ray": {"seconds": ray_seconds, "posts_per_s": len(texts) / ray_seconds,
                    "actors": summary["actors"], "threads_per_actor": threads},
            "plain": {"seconds": plain_seconds, "posts_per_s": len(texts) / plain_seconds,
                      "threads": torch.get_num_threads()},
            "ratio": plain_seconds / ray_seconds, "intent_agreement": agree}


def print_batch(result: dict) -> None:
    r, p = result["ray"], result["plain"]
    print(f"\nbench-batch: {result['posts']} real tweets ({', '.join(BATCH_SOURCES)} repeated), {result['cpus']} CPUs, "
          f"model {result['model_version']}, {result['backend']}, batch {result['batch_size']}")
    print(f"{'Ray Data job, ' + str(r['actors']) + ' actors x ' + str(r['threads_per_actor']) + ' thread(s)':<46}"
          f"{r['seconds']:>8.1f} s {r['posts_per_s']:>8.1f} posts/s")
    print(f"{'plain loop, 1 process x ' + str(p['threads']) + ' thread(s)':<46}"
          f"{p['seconds']:>8.1f} s {p['posts_per_s']:>8.1f} posts/s")
    print(f"ratio Ray / plain: {result['ratio']:.2f}x; intent agreement between the two outputs "
          f"{100 * result['intent_agreement']:.2f}%")
    print("Both wall times include loading the model; Ray's also starting Ray and its workers.")
