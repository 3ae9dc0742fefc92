"""A token bucket per client: `rate` requests a second on average, bursts of up to `burst`."""

import math
import time


class RateLimiter:
    """Buckets are keyed by whatever the caller passes (a hash of the API key, never the key itself)."""

    MAX_CLIENTS = 10_000  # past this, idle (full) buckets are dropped so the table cannot grow without end

    def __init__(self, rate: float, burst: int | None = None, clock=time.monotonic):
        self.rate = rate
        self.burst = burst or max(1, math.ceil(rate))
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # client: (tokens, time of last update)

    def acquire(self, client: str) -> float:
        """Take a token: 0 when the request may go on, else the seconds until a token is back."""
        now = self.clock()
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[client] = (tokens - 1, now)
            if len(self.buckets) > self.MAX_CLIENTS:
                self._drop_idle(now)
            return 0.0
        self.buckets[client] = (tokens, now)
        return (1 - tokens) / self.rate

    def _drop_idle(self, now: float) -> None:
        self.buckets = {c: (t, last) for c, (t, last) in self.buckets.items()
                        if t + (now - last) * self.rate < self.burst}
