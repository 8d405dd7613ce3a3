"""LocalUserCache: the GetUser cache of a single instance on the embedded store."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from examples.userservice.cache import LocalUserCache


async def test_a_fill_after_a_miss_is_served() -> None:
    cache = LocalUserCache()
    assert await cache.get("a") is None
    await cache.offer("a", 1, b"v1")
    assert await cache.get("a") == b"v1"


async def test_a_fill_without_a_miss_in_this_call_is_not_kept() -> None:
    cache = LocalUserCache()
    await cache.offer("a", 1, b"v1")
    assert await cache.get("a") is None


async def test_a_reader_that_missed_before_a_write_cannot_cache_what_it_read() -> None:
    cache = LocalUserCache()
    assert await cache.get("a") is None  # the reader misses, then reads v1 from the store
    async with cache.writing("a") as write:  # meanwhile a write commits v2
        write.offer(2, b"v2")
    await cache.offer("a", 1, b"v1")  # the reader's late fill
    assert await cache.get("a") == b"v2"


async def test_a_write_under_way_when_the_reader_missed_also_blocks_its_fill() -> None:
    cache = LocalUserCache()
    async with cache.writing("a") as write:
        assert await cache.get("a") is None
        write.offer(2, b"v2")
    await cache.offer("a", 1, b"v1")
    assert await cache.get("a") == b"v2"


async def test_a_delete_cannot_be_undone_by_a_late_fill_even_after_eviction() -> None:
    cache = LocalUserCache(max_entries=1)
    assert await cache.get("a") is None
    async with cache.writing("a") as write:
        write.forget(2)
    async with cache.writing("b") as write:  # evicts anything about "a"
        write.offer(1, b"b1")
    await cache.offer("a", 1, b"a1")
    assert await cache.get("a") is None


@pytest.mark.parametrize("outcome", ["unchanged", None])
async def test_a_write_that_changed_nothing_or_failed_keeps_nothing_stale(
    outcome: str | None,
) -> None:
    cache = LocalUserCache()
    assert await cache.get("a") is None
    await cache.offer("a", 1, b"v1")
    with pytest.raises(RuntimeError) if outcome is None else contextlib.nullcontext():
        async with cache.writing("a") as write:
            if outcome is None:
                raise RuntimeError("the store failed mid-commit")
            write.unchanged()
    expected = b"v1" if outcome == "unchanged" else None
    assert await cache.get("a") == expected


async def test_misses_are_per_call() -> None:
    cache = LocalUserCache()

    async def reader(user_id: str, payload: bytes, wrote: asyncio.Event) -> None:
        assert await cache.get(user_id) is None
        await wrote.wait()
        await cache.offer(user_id, 1, payload)

    wrote = asyncio.Event()
    readers = [asyncio.create_task(reader(name, name.encode(), wrote)) for name in "ab"]
    await asyncio.sleep(0)
    wrote.set()
    await asyncio.gather(*readers)
    assert (await cache.get("a"), await cache.get("b")) == (b"a", b"b")


async def test_the_least_recently_used_user_goes_first() -> None:
    cache = LocalUserCache(max_entries=2)
    for name in "abc":
        async with cache.writing(name) as write:
            write.offer(1, name.encode())
        if name == "b":
            assert await cache.get("a") == b"a"  # a is now more recent than b
    assert await cache.get("b") is None
    assert (await cache.get("a"), await cache.get("c")) == (b"a", b"c")


def test_the_bound_must_hold_something() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        LocalUserCache(max_entries=0)
