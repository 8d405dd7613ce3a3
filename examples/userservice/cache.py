"""The optional GetUser cache: serialized users in Redis, never served stale after a write.

An entry is a Redis hash per user: `v`, the version of what it holds (UserRecord.version, or a
deleted user's last version + 1 for a tombstone); `p`, the serialized user.v1.User (which has
no password field, so no hash is ever cached), absent for a tombstone; `w`, the number of
writes to the user under way. Every change is one Lua script, so each compare-and-set is
atomic, and every change sets a TTL, so the cache cannot grow without bound.

The guarantee: once a write has returned, no reader is served an older user. Two things could
break it, and each is closed:

- A racing reader. GetUser misses, reads the store, and offers what it read; by then a write
  may have committed and cached a newer version. `offer` stores only a version newer than the
  entry's, so the late, older offer is ignored; a tombstone's version is higher than any
  version the deleted user had, so a late offer cannot bring it back.
- A write-through that fails after the store has committed (Redis unreachable for a moment):
  the old entry would stay and be served until it expired. So a write marks the entry before
  it touches the store (`writing()`, which counts itself in `w`) and an entry is never served
  while `w` is set, nor filled by readers. When the mark cannot be set, CacheUnavailable
  says so before anything was written: the handler answers UNAVAILABLE and the caller retries,
  so writes need Redis while the cache is on. When the write-through fails, the mark stays:
  the user is read from the store until the entry expires, slower but never stale.

What this assumes: the TTL is longer than any GetUser takes from its store read to its offer
and than any write takes (GetUser's deadline is 5 s against a default TTL of 300 s); a reader
slower than the TTL could cache what it read after the entry expired.

Reads and fills fail soft: a Redis error makes `get` a miss and `offer` a no-op, logged at
most once a minute, so GetUser works with Redis down.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

import redis
from protoc_gen_pyservice import runtime

from examples.userservice import redis_events

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "pyservice:user:"

# KEYS[1] the entry; ARGV version, payload, TTL in ms. Readers never fill an entry a write
# has marked, and never replace a version with one that is not newer.
_OFFER = """
local state = redis.call('HMGET', KEYS[1], 'v', 'w')
if state[2] or (state[1] and tonumber(state[1]) >= tonumber(ARGV[1])) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'p', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] the entry; ARGV TTL in ms.
_BEGIN_WRITE = """
redis.call('HINCRBY', KEYS[1], 'w', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
"""

# KEYS[1] the entry; ARGV outcome ('offer', 'forget' or 'unchanged'), version, payload, TTL in
# ms. The mark of this write goes; the outcome is stored unless a newer version is there.
_FINISH_WRITE = """
if redis.call('HINCRBY', KEYS[1], 'w', -1) <= 0 then
  redis.call('HDEL', KEYS[1], 'w')
end
if ARGV[1] ~= 'unchanged' then
  local current = tonumber(redis.call('HGET', KEYS[1], 'v'))
  if not current or current < tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'v', ARGV[2])
    if ARGV[1] == 'offer' then
      redis.call('HSET', KEYS[1], 'p', ARGV[3])
    else
      redis.call('HDEL', KEYS[1], 'p')
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
"""


class CacheUnavailable(runtime.Unavailable):
    """The cache could not be told about a write, which therefore did not happen. A status
    error, so a handler that lets it pass answers UNAVAILABLE with this message."""

    def __init__(self) -> None:
        super().__init__("the user cache is unavailable, so nothing was changed; retry")


class CacheWrite:
    """What a write did, told to the cache inside `writing()` once the store has answered.

    Say nothing when the outcome is unknown (the store raised mid-commit): the entry then stays
    unservable until it expires, which is safe whatever happened.
    """

    __slots__ = ("outcome", "payload", "version")

    def __init__(self) -> None:
        self.outcome: Literal["offer", "forget", "unchanged"] | None = None
        self.version = 0
        self.payload = b""

    def offer(self, version: int, payload: bytes) -> None:
        """The store now holds the user at `version`, serialized as `payload`."""
        self.outcome, self.version, self.payload = "offer", version, payload

    def forget(self, version: int) -> None:
        """The user was deleted; `version` is its last version + 1 (the tombstone's)."""
        self.outcome, self.version, self.payload = "forget", version, b""

    def unchanged(self) -> None:
        """Nothing was written (no such user, a conflict): the entry may be served again."""
        self.outcome = "unchanged"


class UserCache(Protocol):
    async def get(self, user_id: str) -> bytes | None:
        """The serialized user, or None: not cached, deleted, being written, or Redis down."""
        ...

    async def offer(self, user_id: str, version: int, payload: bytes) -> None:
        """A reader's fill after a miss: kept only when no newer version or tombstone is
        there and no write is under way."""
        ...

    def writing(self, user_id: str) -> AbstractAsyncContextManager[CacheWrite]:
        """Wrap a write to the store: `async with cache.writing(id) as write:`, then
        write.offer() / forget() / unchanged(). Entering raises CacheUnavailable when the
        cache cannot be marked, before the write; a failed write-through is logged."""
        ...

    async def close(self) -> None: ...


class RedisUserCache(UserCache):
    """Users cached in Redis under `key_prefix` + id for `ttl_seconds`. `timeout_seconds`
    bounds connecting and each command, so a stuck Redis costs GetUser that much at most."""

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 300.0,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout_seconds: float = 1.0,
    ) -> None:
        if not ttl_seconds >= 0.001:
            raise ValueError(f"ttl_seconds must be at least 0.001, got {ttl_seconds}")
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self._ttl_ms = round(ttl_seconds * 1000)
        self._prefix = key_prefix
        self._redis = redis_events.client(url, timeout_seconds)
        self._offer = self._redis.register_script(_OFFER)
        self._begin_write = self._redis.register_script(_BEGIN_WRITE)
        self._finish_write = self._redis.register_script(_FINISH_WRITE)
        self._trouble = redis_events.ThrottledLog(logger)

    async def get(self, user_id: str) -> bytes | None:
        try:
            payload, writes = await self._redis.hmget(self._prefix + user_id, ["p", "w"])
        except (redis.RedisError, OSError) as error:
            self._trouble.warning("user cache read failed, reading the store: %s", error)
            return None
        if writes is not None or not isinstance(payload, bytes):
            return None
        return payload

    async def offer(self, user_id: str, version: int, payload: bytes) -> None:
        try:
            await self._offer(keys=[self._prefix + user_id], args=[version, payload, self._ttl_ms])
        except (redis.RedisError, OSError) as error:
            self._trouble.warning("user cache fill failed: %s", error)

    @contextlib.asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[CacheWrite]:
        key = self._prefix + user_id
        try:
            await self._begin_write(keys=[key], args=[self._ttl_ms])
        except (redis.RedisError, OSError) as error:
            raise CacheUnavailable() from error
        write = CacheWrite()
        try:
            yield write
        finally:
            if write.outcome is not None:
                await self._finish(key, [write.outcome, write.version, write.payload, self._ttl_ms])

    async def _finish(self, key: str, arguments: list[str | int | bytes]) -> None:
        try:
            await self._finish_write(keys=[key], args=arguments)
        except (redis.RedisError, OSError) as error:
            self._trouble.warning(
                "user cache write-through failed; the user is read from the store until "
                "the entry expires: %s",
                error,
            )

    async def close(self) -> None:
        await self._redis.aclose()


class LocalUserCache(UserCache):
    """The cache of a single instance, in its own memory: for the embedded store without
    Redis, where every write goes through this process. At most `max_entries` users, least
    recently used first out.

    The same guarantee as RedisUserCache's, kept another way: every write moves an epoch on
    when it starts and when it ends, and a reader's fill is kept only when the epoch has not
    moved since that reader missed (read from a context variable, so per call). A fill can
    then never carry a user older than a write that finished, however long ago an entry was
    evicted, and nothing needs tombstones.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._entries: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._epoch = 0
        self._missed_at: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            "userservice_cache_missed_at", default=None
        )

    async def get(self, user_id: str) -> bytes | None:
        payload = self._entries.get(user_id)
        if payload is None:
            self._missed_at.set(self._epoch)
            return None
        self._entries.move_to_end(user_id)
        return payload

    async def offer(self, user_id: str, version: int, payload: bytes) -> None:
        if self._missed_at.get() == self._epoch:
            self._keep(user_id, payload)

    @contextlib.asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[CacheWrite]:
        self._epoch += 1
        write = CacheWrite()
        try:
            yield write
        finally:
            self._epoch += 1
            if write.outcome == "offer":
                self._keep(user_id, write.payload)
            elif write.outcome != "unchanged":  # deleted, or nobody knows what happened
                self._entries.pop(user_id, None)

    async def close(self) -> None:
        self._entries.clear()

    def _keep(self, user_id: str, payload: bytes) -> None:
        self._entries[user_id] = payload
        self._entries.move_to_end(user_id)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


class NoCache(UserCache):
    """No cache (Redis off): every read misses, and writes need nothing."""

    async def get(self, user_id: str) -> bytes | None:
        return None

    async def offer(self, user_id: str, version: int, payload: bytes) -> None:
        """Nothing to fill."""

    @contextlib.asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[CacheWrite]:
        yield CacheWrite()

    async def close(self) -> None:
        """Nothing to close."""
