"""Request limits: a per-token token bucket and a capped body reader."""

from __future__ import annotations

import threading
import time

from starlette.requests import Request


class TooLarge(Exception):
    pass


class RateLimiter:
    """``rate`` requests per second on average, bursts up to ``burst``, per token name."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, name: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[name] = (tokens - 1, now)
            return 0.0


async def read_body(request: Request, cap: int) -> bytes:
    """The body, refusing early on a declared length over ``cap`` and while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
