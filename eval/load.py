"""`python -m eval load`: the real service under many clients for a while; errors, latency and memory.

All load goes to 127.0.0.1, bounded in clients and seconds.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bench import ROOT, Connection, bench_texts, free_port, wait_ready


@dataclass
class Tally:
    """What the clients saw: latencies by kind, errors (a status other than 200, or a broken connection)."""

    single: list[float] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)
    posts: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(what)


async def hammer(port: int, texts: list[str], clients: int, seconds: float, batch_every: int = 4,
                 batch_size: int = 16, headers: dict[str, str] | None = None,
                 stop: threading.Event | None = None, tally: Tally | None = None) -> Tally:
    """`clients` keep-alive connections, each sending back to back for `seconds` (or until `stop` is set): a
    batch of `batch_size` posts every `batch_every`-th request, single posts otherwise. Requests started are
    always finished. Pass a `tally` to watch it fill from another thread."""
    singles = [json.dumps({"text": t}).encode() for t in texts]
    batches = [json.dumps({"posts": [{"text": t} for t in texts[i:i + batch_size]]}).encode()
               for i in range(0, len(texts) - batch_size + 1, batch_size)]
    tally = tally if tally is not None else Tally()
    deadline = time.perf_counter() + seconds

    async def client(k: int) -> None:
        conn, i = Connection(port, headers), k
        while time.perf_counter() < deadline and not (stop and stop.is_set()):
            is_batch = batch_every > 0 and i % batch_every == batch_every - 1
            path, body = ("/v1/score/batch", batches[i % len(batches)]) if is_batch else ("/v1/score",
                                                                                       singles[i % len(singles)])
            t0 = time.perf_counter()
            try:
                status, answer = await conn.post(path, body)
            except (OSError, asyncio.IncompleteReadError) as e:
                tally.error(f"{path}: {type(e).__name__}: {e}")
                conn.close()
            else:
                if status != 200:
                    tally.error(f"{path}: {status} {answer[:200].decode(errors='replace')}")
                else:
                    (tally.batch if is_batch else tally.single).append(time.perf_counter() - t0)
                    tally.posts += batch_size if is_batch else 1
            i += 1
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return tally


def rss(pid: int) -> int:
    """Resident memory of the server process and any worker processes it started, in bytes."""
    import psutil

    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


async def _run(port: int, pid: int, texts: list[str], clients: int, seconds: float, batch_every: int,
               batch_size: int) -> tuple[Tally, list[tuple[float, int]], float]:
    """The clients, and the server's memory once a second."""
    samples: list[tuple[float, int]] = []
    started = time.perf_counter()

    async def sample() -> None:
        while True:
            samples.append((time.perf_counter() - started, rss(pid)))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample())
    tally = await hammer(port, texts, clients, seconds, batch_every, batch_size)
    elapsed = time.perf_counter() - started
    sampler.cancel()
    samples.append((elapsed, rss(pid)))
    return tally, samples, elapsed


def run_load(model_dir: Path, clients: int = 64, seconds: float = 60, warmup: float = 10, batch_every: int = 4,
             batch_size: int = 16, env: dict[str, str] | None = None) -> dict:
    """Start `python -m service` on a free port, load it, stop it; the figures as a dict."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="triage-load-", suffix=".log", delete=False)
    server = subprocess.Popen([sys.executable, "-m", "service", "--port", str(port), "--model-dir", str(model_dir)],
                              cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log)
    try:
        try:
            wait_ready(port, server)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n{Path(log.name).read_text()[-2000:]}") from None
        texts, source = bench_texts(2000)
        tally, samples, elapsed = asyncio.run(_run(port, server.pid, texts, clients, seconds, batch_every,
                                                   batch_size))
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
        os.unlink(log.name)
    at_warmup = next((m for t, m in samples if t >= warmup), samples[-1][1])
    end = samples[-1][1]
    everything = tally.single + tally.batch
    return {
        "model": str(model_dir), "clients": clients, "seconds": round(elapsed, 1), "source": source,
        "batch_every": batch_every, "batch_size": batch_size,
        "requests": len(everything) + tally.errors, "single_requests": len(tally.single),
        "batch_requests": len(tally.batch), "errors": tally.errors, "first_errors": tally.first_errors,
        "posts": tally.posts, "posts_per_s": tally.posts / elapsed, "requests_per_s": len(everything) / elapsed,
        "p50_ms": ms(everything, 50), "p99_ms": ms(everything, 99),
        "single_p50_ms": ms(tally.single, 50), "single_p99_ms": ms(tally.single, 99),
        "batch_p50_ms": ms(tally.batch, 50), "batch_p99_ms": ms(tally.batch, 99),
        "warmup_s": warmup, "rss_at_warmup_mib": at_warmup / 2**20, "rss_end_mib": end / 2**20,
        "rss_peak_mib": max(m for _, m in samples) / 2**20, "rss_growth_pct": 100 * (end - at_warmup) / at_warmup,
        "rss_mib_by_second": [(round(t, 1), round(m / 2**20, 1)) for t, m in samples],
    }


def ms(latencies: list[float], q: float) -> float:
    return float(np.percentile(np.array(latencies) * 1000, q)) if latencies else float("nan")


def print_load(r: dict) -> None:
    print(f"load: {r['clients']} clients for {r['seconds']:.0f} s on 127.0.0.1, model {r['model']}; every "
          f"{r['batch_every']}th request a batch of {r['batch_size']} posts; texts from {r['source']}")
    print(f"requests: {r['requests']} ({r['single_requests']} single, {r['batch_requests']} batch), "
          f"errors: {r['errors']}")
    for e in r["first_errors"]:
        print(f"  error: {e}")
    print(f"throughput: {r['posts_per_s']:.0f} posts/s, {r['requests_per_s']:.0f} requests/s")
    print(f"latency: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms (single p50 {r['single_p50_ms']:.1f} / "
          f"p99 {r['single_p99_ms']:.1f} ms; batch p50 {r['batch_p50_ms']:.1f} / p99 {r['batch_p99_ms']:.1f} ms)")
    print(f"server memory (RSS): {r['rss_at_warmup_mib']:.1f} MiB at {r['warmup_s']:g} s, {r['rss_end_mib']:.1f} MiB "
          f"at {r['seconds']:.0f} s: growth {r['rss_growth_pct']:+.2f}% (peak {r['rss_peak_mib']:.1f} MiB)")
