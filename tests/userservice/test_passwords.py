"""Password hashing: argon2id at OWASP's parameters, never weaker by accident, never on the
event loop, never more hashes at once than allowed, never a password in a message."""

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator

import argon2
import pytest

from examples.userservice.passwords import (
    MAX_PASSWORD_BYTES,
    OWASP_PARAMETERS,
    PasswordHasher,
    PasswordTooLong,
)
from tests.userservice.harness import CHEAP_PASSWORDS

PASSWORD = "correct horse battery staple"

Hashers = Callable[..., PasswordHasher]


@pytest.fixture
def hashers() -> Iterator[Hashers]:
    """Builds hashers (cheap ones unless told otherwise) and closes them after the test."""
    made: list[PasswordHasher] = []

    def make(
        parameters: argon2.Parameters = CHEAP_PASSWORDS, max_concurrent: int = 2
    ) -> PasswordHasher:
        weak = parameters is not OWASP_PARAMETERS
        hasher = PasswordHasher(
            parameters, max_concurrent=max_concurrent, allow_weak_for_tests=weak
        )
        made.append(hasher)
        return hasher

    yield make
    for hasher in made:
        hasher.close()


async def test_owasp_hash_round_trip(hashers, caplog):
    caplog.set_level(logging.DEBUG)
    hasher = hashers(OWASP_PARAMETERS)
    stored = await hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored
    assert await hasher.verify(stored, PASSWORD) is True
    assert await hasher.verify(stored, PASSWORD + " ") is False
    assert await hasher.verify(stored, "") is False
    assert not hasher.needs_rehash(stored)
    assert PASSWORD not in caplog.text
    assert PASSWORD not in repr(hasher)


async def test_every_hash_has_its_own_salt(hashers):
    hasher = hashers()
    first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)
    assert first != second
    assert await hasher.verify(first, PASSWORD)
    assert await hasher.verify(second, PASSWORD)


async def test_hashes_of_other_parameters_verify_and_need_rehash(hashers):
    cheap_hash = await hashers().hash(PASSWORD)
    owasp = hashers(OWASP_PARAMETERS)
    assert owasp.needs_rehash(cheap_hash)
    assert await owasp.verify(cheap_hash, PASSWORD)


async def test_unicode_passwords(hashers):
    hasher = hashers()
    password = "pässwörd-密码-\U0001f511" * 3
    stored = await hasher.hash(password)
    assert await hasher.verify(stored, password)
    assert not await hasher.verify(stored, password.upper())


async def test_a_broken_stored_hash_is_an_error_not_a_mismatch(hashers):
    hasher = hashers()
    with pytest.raises(argon2.exceptions.InvalidHashError):
        await hasher.verify("$2b$12$not-an-argon2-hash", PASSWORD)
    with pytest.raises(argon2.exceptions.InvalidHashError):
        hasher.needs_rehash("garbage")


@pytest.mark.parametrize(
    "parameters",
    [
        argon2.profiles.CHEAPEST,
        dataclasses.replace(OWASP_PARAMETERS, type=argon2.Type.I),
        dataclasses.replace(OWASP_PARAMETERS, type=argon2.Type.D),
        dataclasses.replace(OWASP_PARAMETERS, version=16),
        dataclasses.replace(OWASP_PARAMETERS, memory_cost=19455),
        dataclasses.replace(OWASP_PARAMETERS, time_cost=1),
        dataclasses.replace(OWASP_PARAMETERS, salt_len=8),
        dataclasses.replace(OWASP_PARAMETERS, hash_len=16),
        dataclasses.replace(OWASP_PARAMETERS, memory_cost=47103, time_cost=1),
        dataclasses.replace(OWASP_PARAMETERS, memory_cost=7168, time_cost=4),
    ],
)
def test_weak_parameters_are_refused(parameters):
    with pytest.raises(ValueError, match="argon2 parameters below OWASP's minimum"):
        PasswordHasher(parameters)
    PasswordHasher(parameters, allow_weak_for_tests=True).close()


@pytest.mark.parametrize(
    ("memory_cost", "time_cost", "parallelism"),
    [
        (47104, 1, 1),
        (19456, 2, 1),
        (12288, 3, 1),
        (9216, 4, 1),
        (7168, 5, 1),
        (19456, 2, 4),
        (65536, 3, 4),
    ],
)
def test_owasp_configurations_are_accepted(memory_cost, time_cost, parallelism):
    parameters = dataclasses.replace(
        OWASP_PARAMETERS, memory_cost=memory_cost, time_cost=time_cost, parallelism=parallelism
    )
    PasswordHasher(parameters).close()


def test_at_least_one_hash_at_a_time():
    with pytest.raises(ValueError, match="max_concurrent must be at least 1, not 0"):
        PasswordHasher(max_concurrent=0)


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("a" * MAX_PASSWORD_BYTES, True),
        ("a" * (MAX_PASSWORD_BYTES + 1), False),
        ("é" * (MAX_PASSWORD_BYTES // 2), True),
        ("é" * (MAX_PASSWORD_BYTES // 2) + "a", False),
        ("\U0001f511" * 256, True),
        ("secret-" * 1_000_000, False),
    ],
)
async def test_password_length_is_bounded_in_utf8_bytes(hashers, password, accepted):
    hasher = hashers()
    if accepted:
        assert await hasher.verify(await hasher.hash(password), password)
        return
    with pytest.raises(PasswordTooLong) as refused:
        await hasher.hash(password)
    assert str(refused.value) == "password is longer than 1024 bytes in UTF-8"
    with pytest.raises(PasswordTooLong):
        await hasher.verify(await hasher.hash("short"), password)


async def test_text_that_is_not_unicode_is_refused_without_quoting_it(hashers):
    with pytest.raises(ValueError) as refused:
        await hashers().hash("abc\ud800xyz")
    assert str(refused.value) == "password is not valid Unicode text"
    assert refused.value.__cause__ is None


class Instrumented:
    """Stands in for argon2's hash: counts hashes running at once, each held until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        self.started = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.barrier: threading.Barrier | None = None

    def __call__(self, password: bytes, *, salt: bytes | None = None) -> str:
        self.entered.set()
        with self.lock:
            self.running += 1
            self.started += 1
            self.most_running = max(self.most_running, self.running)
        if self.barrier is not None:
            self.barrier.wait()
        self.release.wait(timeout=5)
        with self.lock:
            self.running -= 1
        return "$argon2id$fake"


@pytest.fixture
def fake(monkeypatch) -> Instrumented:
    instrumented = Instrumented()
    monkeypatch.setattr(argon2.PasswordHasher, "hash", instrumented)
    return instrumented


async def first_hash_running(hasher: PasswordHasher, fake: Instrumented) -> asyncio.Task[str]:
    """Start a hash and wait, off the event loop, until it is inside argon2."""
    first = asyncio.create_task(hasher.hash("first"))
    assert await asyncio.to_thread(fake.entered.wait, 5)
    return first


async def test_one_hash_at_a_time_when_max_concurrent_is_one(hashers, fake):
    hasher = hashers(max_concurrent=1)
    first = await first_hash_running(hasher, fake)
    others = asyncio.gather(*(hasher.hash(f"password-{n}") for n in range(3)))
    await asyncio.sleep(0.05)  # time for the others to start too, were they not held back
    fake.release.set()
    assert await others == ["$argon2id$fake"] * 3
    await first
    assert fake.most_running == 1


async def test_max_concurrent_hashes_do_run_at_once(hashers, fake):
    fake.barrier = threading.Barrier(2, timeout=5)  # both must be inside argon2 together
    fake.release.set()
    hasher = hashers(max_concurrent=2)
    assert len(await asyncio.gather(hasher.hash("a"), hasher.hash("b"))) == 2
    assert fake.most_running == 2


async def test_a_cancelled_caller_keeps_its_slot_until_its_hash_ends(hashers, fake):
    hasher = hashers(max_concurrent=1)
    first = await first_hash_running(hasher, fake)
    first.cancel()
    second = asyncio.create_task(hasher.hash("second"))
    await asyncio.sleep(0.05)
    assert fake.started == 1  # the first hash still runs, so the second waits
    fake.release.set()
    assert await second == "$argon2id$fake"
    assert fake.most_running == 1
    assert first.cancelled()


async def test_a_waiting_caller_that_is_cancelled_never_hashes(hashers, fake):
    hasher = hashers(max_concurrent=1)
    first = await first_hash_running(hasher, fake)
    waiting = asyncio.create_task(hasher.hash("waiting"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    fake.release.set()
    await first
    assert fake.started == 1


async def test_the_event_loop_runs_while_a_real_hash_does(hashers):
    hasher = hashers(OWASP_PARAMETERS)
    hashing = asyncio.create_task(hasher.hash(PASSWORD))
    ticks = 0
    while not hashing.done():
        await asyncio.sleep(0.001)
        ticks += 1
    await hashing
    # A hash on the loop itself would let the ticker wake once, after it.
    assert ticks >= 3


def test_messages_never_hold_the_password(hashers):
    assert PASSWORD not in str(PasswordTooLong())
    assert PASSWORD not in repr(hashers(OWASP_PARAMETERS))
