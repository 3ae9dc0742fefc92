"""Gathers concurrent requests into micro-batches for the predictor, off the event loop."""

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

BACKLOG_FACTOR = 4  # a backlog is taken in batches of up to this many times the micro-batch size


class MicroBatcher:
    """Up to `max_size` posts or `max_wait` seconds per batch; up to `streams` batches run at once.

    The wait applies only when the last batch gathered several requests (there is concurrency to
    gather): a lone client's request runs at once. A stream gathers while the others compute, so the
    model never waits for the answers to go out and the next requests to come in.
    """

    def __init__(self, holder, max_size: int, max_wait: float, streams: int = 1):
        self.holder = holder
        self.max_size = max_size
        self.max_wait = max_wait
        self.queue: asyncio.Queue = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="inference")
        self.streams = streams
        self.free = asyncio.Semaphore(streams)
        self.running: set[asyncio.Task] = set()
        self.task: asyncio.Task | None = None
        self.on_batch = None  # callback(size) for metrics
        self.last_requests = 0  # requests in the last batch

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
        self.executor.shutdown(wait=True)

    async def submit(self, texts: list[str]):
        """Predictions for `texts` and the predictor that made them."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.free.acquire()  # gather while the streams are busy, so a batch takes all that waited
            items = [await self.queue.get()]
            size = len(items[0][0])
            # A backlog larger than the streams' share of small batches is taken in bigger ones.
            share = math.ceil((self.queue.qsize() + 1) / self.streams)
            limit = min(BACKLOG_FACTOR * self.max_size, max(self.max_size, share))
            deadline = loop.time() + self.max_wait
            wait = self.last_requests > 1
            while size < limit:
                remaining = deadline - loop.time() if wait else 0
                try:
                    item = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(
                        self.queue.get(), remaining)
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                items.append(item)
                size += len(item[0])
            self.last_requests = len(items)
            task = asyncio.create_task(self._infer(items))
            self.running.add(task)
            task.add_done_callback(self.running.discard)

    async def _infer(self, items) -> None:
        loop = asyncio.get_running_loop()
        try:
            predictor = self.holder.predictor  # a reload swaps this; the batch keeps the one it took
            texts = [t for batch, _ in items for t in batch]
            try:
                results = await loop.run_in_executor(self.executor, predictor.predict, texts)
            except Exception as e:  # hand the failure to every waiting request
                for _, future in items:
                    if not future.done():
                        future.set_exception(e)
                return
            if self.on_batch:
                self.on_batch(len(texts))
            start = 0
            for batch, future in items:
                if not future.done():
                    future.set_result((results[start:start + len(batch)], predictor))
                start += len(batch)
        finally:
            self.free.release()
