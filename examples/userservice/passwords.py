"""Password hashing: argon2id (argon2-cffi) at OWASP's parameters, off the event loop, bounded.

Each hash or verification fills `memory_cost` KiB, so at most `max_concurrent` run at once, on
the hasher's own threads (argon2-cffi releases the GIL while hashing); further calls wait their
turn. The threads are the bound, rather than an asyncio semaphore around `to_thread`, because a
cancelled caller (a client's deadline) would release a semaphore while its hash runs on: with
threads a started hash keeps its slot until it ends, so a flood of CreateUser calls with short
deadlines still uses at most `max_concurrent * memory_cost` KiB.

The cost of one plain hash is the benchmark's to measure, with
`argon2.PasswordHasher.from_parameters(OWASP_PARAMETERS).hash(...)`; this module adds only the
hop to a thread.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2 import Parameters as Parameters  # re-exported: the type of the parameters here

# The UTF-8 length limit: argon2's cost hardly depends on it, but what a peer sends is bounded.
# Any 256 characters fit (UTF-8 needs at most 4 bytes a character); ASVS asks for at least 64.
MAX_PASSWORD_BYTES = 1024

# OWASP Password Storage Cheat Sheet: argon2id with 19 MiB, 2 iterations, 1 lane.
OWASP_PARAMETERS = Parameters(
    type=argon2.Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
)
# The cheat sheet's equally strong (memory_cost KiB, time_cost) pairs; spreading the same work
# over more lanes does not make it cheaper to attack, so parallelism is not limited.
_OWASP_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
_MIN_SALT_BYTES = 16
_MIN_HASH_BYTES = 32


class PasswordTooLong(ValueError):
    def __init__(self) -> None:
        super().__init__(f"password is longer than {MAX_PASSWORD_BYTES} bytes in UTF-8")


def _meets_owasp_minimum(parameters: Parameters) -> bool:
    return (
        parameters.type is argon2.Type.ID
        and parameters.version == 19
        and parameters.salt_len >= _MIN_SALT_BYTES
        and parameters.hash_len >= _MIN_HASH_BYTES
        and any(
            parameters.memory_cost >= memory_cost and parameters.time_cost >= time_cost
            for memory_cost, time_cost in _OWASP_MINIMUMS
        )
    )


def _encoded(password: str) -> bytes:
    try:
        secret = password.encode("utf-8")
    except UnicodeEncodeError:
        # Its own message would quote a character of the password.
        raise ValueError("password is not valid Unicode text") from None
    if len(secret) > MAX_PASSWORD_BYTES:
        raise PasswordTooLong
    return secret


class PasswordHasher:
    """Hashes and verifies passwords; `close()` ends its threads."""

    def __init__(
        self,
        parameters: Parameters = OWASP_PARAMETERS,
        *,
        max_concurrent: int = os.cpu_count() or 1,
        allow_weak_for_tests: bool = False,
    ) -> None:
        if not (allow_weak_for_tests or _meets_owasp_minimum(parameters)):
            raise ValueError(
                f"argon2 parameters below OWASP's minimum: {parameters}; use argon2id version"
                f" 19, salt_len >= {_MIN_SALT_BYTES}, hash_len >= {_MIN_HASH_BYTES} and"
                " (memory_cost, time_cost) at least one of"
                f" {', '.join(map(str, _OWASP_MINIMUMS))}"
            )
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        self._argon2 = argon2.PasswordHasher.from_parameters(parameters)
        self._threads = ThreadPoolExecutor(max_concurrent, thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        """The encoded hash (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), salted at random.
        PasswordTooLong beyond MAX_PASSWORD_BYTES."""
        secret = _encoded(password)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._argon2.hash, secret)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """Whether `password` is the one `stored_hash` was made from, compared in constant time.
        A wrong password is False; a stored hash that is no argon2 hash raises argon2's
        InvalidHashError or VerificationError, and a password too long to have been hashed
        PasswordTooLong."""
        secret = _encoded(password)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._threads, self._argon2.verify, stored_hash, secret
            )
        except argon2.exceptions.VerifyMismatchError:
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether `stored_hash` was made with other parameters than this hasher's, so it should
        be replaced the next time the password is at hand."""
        return self._argon2.check_needs_rehash(stored_hash)

    def close(self) -> None:
        """End the threads; hashes not yet started are cancelled."""
        self._threads.shutdown(wait=False, cancel_futures=True)
