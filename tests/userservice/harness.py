"""The real UserService for tests: a SQLite store in a temporary folder, passwords hashed with
cheap parameters (the OWASP ones cost ~50 ms a user), everything else as in production."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
from google.protobuf import field_mask_pb2
from protoc_gen_pyservice.runtime import serve
from user.v1 import user_client, user_pb2, user_testing

from examples.userservice import app
from examples.userservice.config import ServiceConfig
from examples.userservice.services.user_service import UserService

CHEAP_PASSWORDS = dataclasses.replace(argon2.profiles.CHEAPEST, salt_len=16, hash_len=32)


def config_for(folder: Path, **overrides: Any) -> ServiceConfig:
    return ServiceConfig(
        **{
            "database_url": f"sqlite:///{folder}/users.db",
            "password_parameters": CHEAP_PASSWORDS,
            "allow_weak_passwords_for_tests": True,
            **overrides,
        }
    )


@contextlib.asynccontextmanager
async def served(
    config: ServiceConfig, settings: serve.ServerSettings | None = None
) -> AsyncIterator[tuple[user_client.UserServiceClient, app.Dependencies]]:
    """The service in process, as `make serve` builds it, and a typed client of it."""
    async with (
        app.running(config) as dependencies,
        user_testing.serve_user_service(UserService(dependencies), settings) as client,
    ):
        yield client, dependencies


def new_user(number: int = 0, **fields: Any) -> user_pb2.CreateUserRequest:
    return user_pb2.CreateUserRequest(
        **{
            "email": f"user{number}@example.com",
            "first_name": "Ada",
            "last_name": f"Lovelace{number}",
            "password": "correct horse battery",
            "role": user_pb2.USER_ROLE_USER,
            **fields,
        }
    )


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=paths)


async def subscribed(dependencies: app.Dependencies, count: int, seconds: float = 10.0) -> None:
    """Wait (bounded) until `count` streams have subscribed: a write before that would not
    reach them. AssertionError with the count when they have not within `seconds`."""
    deadline = time.monotonic() + seconds
    while dependencies.updates.subscriber_count < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{dependencies.updates.subscriber_count} subscribers, not {count}"
            )
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
