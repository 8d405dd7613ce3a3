"""`python -m tests.userservice.crash_server DATABASE_PATH`: the real UserService on the real
SQLite store at DATABASE_PATH, for tests that kill it. Built as `python -m examples.userservice`
builds it (the same server settings, from PYSERVICE_* variables), but passwords are hashed with
the harness's cheap parameters, so thousands of creates stay quick; production code gains no
switch for that. It listens on 127.0.0.1 at the port PYSERVICE_PORT names, 0 (the default
here) for a free one, and logs "serving user.v1.UserService on port N" to stderr once it
accepts calls."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "generated"))

from protoc_gen_pyservice.runtime import serve
from user.v1 import user_service

from examples.userservice import app, config
from examples.userservice.services.user_service import UserService
from tests.userservice.harness import config_for


async def main(database: Path) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = config.server_settings_from({"PYSERVICE_PORT": "0", **os.environ})
    service_config = config_for(database.parent, database_url=f"sqlite:///{database}")
    async with app.running(service_config) as dependencies:
        service = serve.build_server(
            [(user_service.add_user_service_to_server, UserService(dependencies))], settings
        )
        await service.serve_until_signal()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.userservice.crash_server DATABASE_PATH")
    asyncio.run(main(Path(sys.argv[1]).resolve()))
