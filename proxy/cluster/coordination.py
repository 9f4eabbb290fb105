"""Coordination between replicas through Redis: download locks and invalidation.

Keys live under a namespace, `vp:<bucket>/<prefix>:` (the shared bucket names the
cluster), so clusters sharing one Redis stay apart.

- A download lock is `lock:<key>` = `<token> <advertise URL>`, set only when absent
  with an expiry of `LOCK_TTL_S`, renewed by its holder every third of that, deleted by
  its holder only (compare-and-delete in one Lua script). A replica that dies stops
  renewing, so its lock expires within `LOCK_TTL_S` and another replica takes over.
- `channel:invalidate` is a pub/sub channel: a project name published there is forgotten by
  every replica.

Every call fails fast (short socket timeouts) with `CoordinationError`, so callers can go
on without coordination while Redis is down; `last_error` keeps the reason for `/health`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("variant_proxy.cluster")

LOCK_TTL_S = 5.0

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class CoordinationError(Exception):
    """Redis did not answer; the message says why."""


@dataclass
class Lock:
    """A held download lock: its key and the value only its holder knows."""

    key: str
    value: str
    renewer: asyncio.Task[None] | None = None
    lost: bool = False


class Coordinator:
    """One replica's connection to the cluster's Redis."""

    def __init__(
        self, redis_url: str, *, namespace: str = "vp:", lock_ttl_s: float = LOCK_TTL_S
    ) -> None:
        self.namespace = namespace
        self._redis: Any = aioredis.from_url(
            redis_url,
            socket_connect_timeout=1.0,
            socket_timeout=2.0,
            health_check_interval=10,
        )
        self.lock_ttl_s = lock_ttl_s
        self.advertise_url = ""
        self.last_error: str | None = None
        self.errors = 0
        self._listener: asyncio.Task[None] | None = None

    @property
    def redis(self) -> Any:
        return self._redis

    def key(self, kind: str, name: str) -> str:
        """The Redis key of one thing of this cluster, e.g. `key("lock", file_key)`."""
        return f"{self.namespace}{kind}:{name}"

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
        await self._redis.aclose()

    async def call(self, operation: Callable[[], Awaitable[Any]]) -> Any:
        try:
            answer = await operation()
        except (RedisError, OSError) as exc:
            self.errors += 1
            self.last_error = f"redis: {exc}"[:300]
            raise CoordinationError(self.last_error) from exc
        self.last_error = None
        return answer

    async def problem(self) -> str | None:
        """None when Redis answers, else the one-line reason (for `/health`)."""
        try:
            await self.call(self._redis.ping)
        except CoordinationError as exc:
            return str(exc)
        return None

    # -- download locks --------------------------------------------------------------------

    async def try_lock(self, key: str) -> Lock | None:
        """Take the download lock of `key` (renewed until released), or None when held."""
        value = f"{secrets.token_hex(8)} {self.advertise_url}"
        name = self.key("lock", key)
        ttl_ms = int(self.lock_ttl_s * 1000)
        taken = await self.call(lambda: self._redis.set(name, value, nx=True, px=ttl_ms))
        if not taken:
            return None
        lock = Lock(name, value)
        lock.renewer = asyncio.get_running_loop().create_task(
            self._renew(lock), name=f"renew-{name}"
        )
        return lock

    async def holder(self, key: str) -> str | None:
        """The advertise URL of the replica holding `key`'s lock, or None."""
        value = await self.call(lambda: self._redis.get(self.key("lock", key)))
        if value is None:
            return None
        _, _, url = bytes(value).decode().partition(" ")
        return url or None

    async def release(self, lock: Lock) -> None:
        if lock.renewer is not None:
            lock.renewer.cancel()
        try:
            await self.call(lambda: self._redis.eval(_RELEASE, 1, lock.key, lock.value))
        except CoordinationError as exc:
            log.warning("releasing %s failed (it expires by itself): %s", lock.key, exc)

    async def _renew(self, lock: Lock) -> None:
        ttl_ms = int(self.lock_ttl_s * 1000)
        while True:
            await asyncio.sleep(self.lock_ttl_s / 3)
            try:
                kept = await self.call(
                    lambda: self._redis.eval(_RENEW, 1, lock.key, lock.value, ttl_ms)
                )
            except CoordinationError as exc:
                log.warning("renewing %s failed: %s", lock.key, exc)
                continue
            if not kept:
                lock.lost = True
                log.warning("lost %s (expired); another replica may download too", lock.key)
                return

    # -- invalidation ----------------------------------------------------------------------

    async def publish_invalidation(self, project: str) -> None:
        await self.call(lambda: self._redis.publish(self.key("channel", "invalidate"), project))

    def listen_for_invalidations(self, forget: Callable[[str], None]) -> None:
        """Call `forget(project)` for every invalidation any replica publishes."""
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(forget), name="cluster-invalidations"
        )

    async def _listen(self, forget: Callable[[str], None]) -> None:
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.key("channel", "invalidate"))
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            forget(bytes(message["data"]).decode())
            except (RedisError, OSError) as exc:
                self.last_error = f"redis: {exc}"[:300]
                if delay == 0.5:
                    log.warning("invalidation channel lost (%s); retrying", exc)
            # Retried with backoff (at most every 30 s) while Redis is down.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
