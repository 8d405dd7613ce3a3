"""The real UserService for tests: a SQLite store in a temporary folder, passwords hashed with
cheap parameters (the OWASP ones cost ~50 ms a user), everything else as in production."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
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
