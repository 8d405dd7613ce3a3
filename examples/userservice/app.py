"""The UserService's parts, opened together from a ServiceConfig and closed together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from examples.userservice import cache, events, page_tokens, passwords, redis_events, store
from examples.userservice.config import ServiceConfig
from examples.userservice.store.base import UserRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dependencies:
    """Everything the handlers use; `cache` is a NoCache when Redis is off."""

    repository: UserRepository
    updates: events.UpdateBus
    cache: cache.UserCache
    page_tokens: page_tokens.PageTokens
    passwords: passwords.PasswordHasher


@contextlib.asynccontextmanager
async def running(config: ServiceConfig) -> AsyncIterator[Dependencies]:
    """Open the store (migrating it), the update bus and the cache; close them on exit, the
    bus first so no stream outlives the store."""
    async with contextlib.AsyncExitStack() as stack:
        repository = await store.open_repository(config.database_url)
        stack.push_async_callback(repository.close)
        # Without Redis an embedded store has one instance, which sees every write.
        single_instance = config.redis_url is None and store.is_embedded(config.database_url)
        updates: events.UpdateBus
        user_cache: cache.UserCache = cache.NoCache()
        if config.redis_url is None:
            updates = events.LocalUpdateBus()
            if config.local_cache and single_instance:
                user_cache = cache.LocalUserCache()
        else:
            updates = redis_events.RedisUpdateBus(config.redis_url)
            user_cache = cache.RedisUserCache(
                config.redis_url, ttl_seconds=config.cache_ttl_seconds
            )
            stack.push_async_callback(user_cache.close)
        await updates.start()
        stack.push_async_callback(updates.close)
        hasher = passwords.PasswordHasher(
            config.password_parameters, allow_weak_for_tests=config.allow_weak_passwords_for_tests
        )
        stack.callback(hasher.close)
        secret = config.page_token_secret
        if secret is None:
            if not single_instance:
                logger.warning(
                    "PYSERVICE_PAGE_TOKEN_SECRET is unset: page tokens work only on the "
                    "instance that gave them out, and only until it restarts"
                )
            secret = page_tokens.generate_secret()
        yield Dependencies(
            repository=repository,
            updates=updates,
            cache=user_cache,
            page_tokens=page_tokens.PageTokens(secret, ttl_seconds=config.page_token_ttl_seconds),
            passwords=hasher,
        )
