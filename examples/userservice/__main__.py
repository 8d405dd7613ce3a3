"""`python -m examples.userservice` (`make serve`): the UserService on 127.0.0.1, configured by
the PYSERVICE_* variables that examples/userservice/config.py lists."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generated"))

import redis
from protoc_gen_pyservice.runtime import serve
from user.v1 import user_service

from examples.userservice import app, config, store
from examples.userservice.services.user_service import UserService


def how_to_call(settings: serve.ServerSettings, port: int) -> str:
    """What `make serve` prints once the server listens."""
    scheme, flags = (
        ("https", "--insecure ") if settings.tls else ("http", "--http2-prior-knowledge ")
    )
    base = f"{scheme}://127.0.0.1:{port}/user.v1.UserService"
    lines = [f"UserService listening on 127.0.0.1:{port}. Try:"]
    if settings.reflection:
        lines.append(
            f"  buf curl --protocol grpc {flags}--list-methods {scheme}://127.0.0.1:{port}"
        )
    lines += [
        f'  buf curl --protocol grpc {flags}-d \'{{"email": "ada@example.com", '
        '"first_name": "Ada", "last_name": "Lovelace", "password": "correct horse battery", '
        f'"role": "USER_ROLE_ADMIN"}}\' {base}/CreateUser',
        f'  buf curl --protocol grpc {flags}-d \'{{"page_size": 10, '
        f'"filter": "role:USER_ROLE_ADMIN", "order_by": "created_at desc"}}\' '
        f"{base}/ListUsers",
    ]
    if not settings.reflection:
        lines.append("  (reflection is off: add --schema proto to those commands)")
    return "\n".join(lines)


async def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = config.server_settings_from(os.environ)
        service_config = config.service_config_from(os.environ)
    except ValueError as error:  # a bad PYSERVICE_* value: one line, not a traceback
        print(f"userservice: {error}", file=sys.stderr)
        return 2
    try:
        async with app.running(service_config) as dependencies:
            service = serve.build_server(
                [(user_service.add_user_service_to_server, UserService(dependencies))], settings
            )
            # The port is bound already; serve_until_signal starts accepting on it.
            print(f"store: {store.describe(service_config.database_url)}", flush=True)
            print(how_to_call(settings, service.port), flush=True)
            await service.serve_until_signal()
    except (store.StoreError, redis.RedisError, OSError) as error:  # one line, no traceback
        print(f"userservice: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
