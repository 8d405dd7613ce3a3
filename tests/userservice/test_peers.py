"""The UserService process (`python -m examples.userservice`) against clients nobody here
wrote: the source document's Node.js UserClient (grpc-js, over TLS, with the document's
keepalive settings; peers/user_client.js) and `buf curl` through server reflection. Skipped,
saying why, where Node or the npm registry is missing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from user.v1 import user_client, user_pb2

from tests.behaviour.test_example_server import BUF, buf_curl
from tests.behaviour.test_node_peer import node_modules
from tests.behaviour.test_tls import issue
from tests.conftest import ROOT
from tests.userservice.harness import new_user
from tests.userservice.process import ServiceProcess, running_service

__all__ = ["node_modules"]  # the fixture that installs grpc-js, shared with test_node_peer

CLIENT = Path(__file__).parent / "peers" / "user_client.js"
ANSWER_SECONDS = 20.0
# Longer than the document's keepalive_time (30 s): the client pings once while idle.
IDLE_SECONDS = 36.0
BUF_CURL = (str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge")


def user_fields(number: int, **fields: Any) -> dict[str, Any]:
    """A CreateUserRequest as the Node client sends it: proto (snake_case) field names."""
    return {
        "email": f"user{number}@example.com",
        "first_name": "Ada",
        "last_name": f"Lovelace{number}",
        "password": "correct horse battery",
        "role": "USER_ROLE_USER",
        **fields,
    }


class NodeClient:
    """peers/user_client.js in a subprocess: `ask` sends one command and returns its answer."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_answers, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_answers(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _read_errors(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._errors.append(line)

    def stderr(self) -> str:
        return "".join(self._errors)

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        line = None
        try:
            self._process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self._process.stdin.flush()
            line = self._answers.get(timeout=ANSWER_SECONDS)
        except (OSError, queue.Empty):  # the script ended, or hangs
            pass
        if line is None:
            pytest.fail(f"user_client.js gave no answer to {op}:\n{self.stderr()[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, answer  # a bug of the script, not a gRPC failure
        return answer

    def close(self) -> None:
        """End the script (it closes its channel when stdin ends), killing it if it hangs."""
        try:
            if self._process.stdin is not None:
                self._process.stdin.close()
            self._process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        for reader in self._readers:
            reader.join(5)


@contextlib.contextmanager
def node_client(
    modules: Path, service: ServiceProcess, ca: Path, *, trace: bool = False
) -> Iterator[NodeClient]:
    """The Node client connected to `localhost:PORT` (the name the server's certificate
    carries), trusting `ca`; with `trace`, grpc-js logs keepalive and transport events."""
    environment = {"NODE_PATH": str(modules), "PATH": os.environ["PATH"]}
    if trace:
        environment |= {"GRPC_TRACE": "keepalive,transport", "GRPC_VERBOSITY": "DEBUG"}
    process = subprocess.Popen(
        ["node", str(CLIENT), f"localhost:{service.port}", str(ca), str(ROOT)],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = NodeClient(process)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a server certificate for localhost, made for this module."""
    folder = tmp_path_factory.mktemp("pki")
    issue("server", issue("ca", None, folder), folder)
    return folder


@pytest.fixture
def tls_service(pki: Path, tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service(
        tmp_path,
        {
            "PYSERVICE_TLS_CERT": str(pki / "server.crt"),
            "PYSERVICE_TLS_KEY": str(pki / "server.key"),
        },
    ) as service:
        yield service


@pytest.fixture
def node(node_modules: Path, tls_service: ServiceProcess, pki: Path) -> Iterator[NodeClient]:
    with node_client(node_modules, tls_service, pki / "ca.crt") as client:
        yield client


# The Node client over TLS.


def test_node_creates_and_gets_users(node: NodeClient) -> None:
    created = node.ask("createUser", user=user_fields(0))
    assert created["ok"], created
    user = created["user"]
    # keepCase, enums: String, longs: String, as the document loads the proto.
    assert user["first_name"] == "Ada" and user["role"] == "USER_ROLE_USER"
    assert isinstance(user["created_at"]["seconds"], str)
    assert node.ask("createUser", user=user_fields(0, first_name="Eve")) == {
        "ok": False,
        "code": 6,
        "status": "ALREADY_EXISTS",
        "details": "a user with this email already exists",
    }
    assert node.ask("getUser", id=user["id"]) == {"ok": True, "user": user}
    assert node.ask("getUser", id="no-such-user") == {
        "ok": False,
        "code": 5,
        "status": "NOT_FOUND",
        "details": "user not found",
    }


def test_node_pages_through_every_user_with_the_proto_field_names(node: NodeClient) -> None:
    ids = {node.ask("createUser", user=user_fields(number))["user"]["id"] for number in range(5)}
    pages, token = [], ""
    for _ in range(10):
        page = node.ask("listUsers", page_size=2, page_token=token)
        assert page["ok"], page
        pages.append(page)
        token = page["nextPageToken"]
        if not token:
            break
    else:
        pytest.fail(f"5 users in pages of 2 still had a next page token after 10 pages: {pages}")
    assert [len(page["users"]) for page in pages] == [2, 2, 1]
    assert {page["totalCount"] for page in pages} == {5}
    listed = [user["id"] for page in pages for user in page["users"]]
    assert listed == sorted(ids)  # no order_by: by id

    # The document's client spells the fields in camelCase although it loads with keepCase:
    # proto-loader drops pageSize, the server sees page_size 0 and refuses it...
    as_document = node.ask("raw", method="listUsers", request={"pageSize": 2, "pageToken": ""})
    assert as_document["code"] == 3 and as_document["status"] == "INVALID_ARGUMENT"
    assert as_document["details"].endswith("page_size: value must be inside range [1, 100]")
    # ...and the response has no nextPageToken or totalCount, only the proto's names.
    response = node.ask("raw", method="listUsers", request={"page_size": 2})["response"]
    assert "nextPageToken" not in response and "totalCount" not in response
    assert response["total_count"] == 5 and response["next_page_token"]


def test_node_lists_with_filter_and_order_by(node: NodeClient) -> None:
    roles = ["USER_ROLE_ADMIN", "USER_ROLE_USER", "USER_ROLE_ADMIN", "USER_ROLE_ADMIN"]
    for number, role in enumerate(roles):
        assert node.ask("createUser", user=user_fields(number, role=role))["ok"]
    admins = node.ask(
        "listUsers", page_size=10, filter="role:USER_ROLE_ADMIN", order_by="last_name desc"
    )
    assert [user["last_name"] for user in admins["users"]] == [
        "Lovelace3",
        "Lovelace2",
        "Lovelace0",
    ]
    assert admins["totalCount"] == 3 and admins["nextPageToken"] == ""
    refused = node.ask("listUsers", page_size=10, filter="role:ADMIN OR role:USER")
    assert refused["status"] == "INVALID_ARGUMENT" and refused["details"].startswith("filter")


async def test_node_streams_the_updates_of_the_users_it_watches(
    node: NodeClient, tls_service: ServiceProcess, pki: Path
) -> None:
    async def ask(op: str, **fields: Any) -> dict[str, Any]:
        return await asyncio.to_thread(node.ask, op, **fields)

    credentials = grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes())
    async with user_client.UserServiceClient.connect(
        f"localhost:{tls_service.port}", credentials=credentials
    ) as users:
        watched = (await users.create_user(new_user(1), timeout=10)).user
        other = (await users.create_user(new_user(2), timeout=10)).user
        # The typed Python client's user, as the Node client reads it.
        assert (await ask("getUser", id=watched.id))["user"]["email"] == watched.email

        async def rename(user: user_pb2.User, first_name: str) -> None:
            await users.update_user(
                user_pb2.UpdateUserRequest(
                    id=user.id,
                    first_name=first_name,
                    update_mask=field_mask_pb2.FieldMask(paths=["first_name"]),
                ),
                timeout=10,
            )

        async def first_update(name: str, *watched_users: user_pb2.User) -> dict[str, Any]:
            """The server subscribes when its handler first runs, which no client sees: write
            (the other user first) until the stream `name` receives an update."""
            for attempt in range(20):
                for user in (other, *watched_users):
                    await rename(user, f"{user.first_name}{attempt}")
                answer = await ask("next", name=name, timeout_ms=500)
                if not answer.get("timeout"):
                    assert answer["ok"], answer
                    update: dict[str, Any] = answer["update"]
                    return update
            pytest.fail(f"no update on {name}")

        # The document's spelling, {userIds: [...]}, reaches the server as no user_ids at
        # all: it asked for one user and gets every user's updates.
        as_document = {"userIds": [watched.id]}
        assert await ask("watch", name="document", request=as_document) == {"ok": True}
        assert (await first_update("document"))["user"]["id"] == other.id

        assert await ask("watch", name="one", user_ids=[watched.id]) == {"ok": True}
        first = await first_update("one", watched)
        assert first["type"] == "UPDATE_TYPE_UPDATED" and first["user"]["id"] == watched.id
        # Subscribed for certain now: an update of the other user would come before this one.
        await rename(other, "OtherLast")
        await rename(watched, "WatchedLast")
        seen = [first]
        while seen[-1]["user"]["first_name"] != "WatchedLast":
            answer = await ask("next", name="one", timeout_ms=5000)
            assert "update" in answer, answer
            seen.append(answer["update"])
        assert {update["user"]["id"] for update in seen} == {watched.id}
        cancelled = {
            "ok": False,
            "code": 1,
            "status": "CANCELLED",
            "details": "Cancelled on client",
        }
        assert await ask("cancel", name="one") == cancelled
        assert await ask("cancel", name="document") == cancelled


def test_the_documents_keepalive_keeps_an_idle_connection(
    node_modules: Path, tls_service: ServiceProcess, pki: Path
) -> None:
    with node_client(node_modules, tls_service, pki / "ca.crt", trace=True) as node:
        assert node.ask("listUsers", page_size=1)["ok"]
        connected = node.ask("connectivity")
        assert connected["state"] == "READY"
        time.sleep(IDLE_SECONDS)  # no call in flight: only keepalive pings cross
        idle = node.ask("connectivity")
        idle_trace = node.stderr()
        assert node.ask("listUsers", page_size=1)["ok"]
        after = node.ask("connectivity")
        trace = node.stderr()  # before the client closes its connection
    # A GOAWAY (too_many_pings) or a dropped connection would have left READY and come back.
    assert idle == after == connected, (connected, idle, after)
    # The client pinged while idle, and heard back. (With the document's `true` for
    # permit_without_calls grpc-js would hold that ping back until the next call.)
    assert "Received ping response" in idle_trace, idle_trace[-3000:]
    assert "GOAWAY" not in trace and "connection closed" not in trace, trace[-3000:]


# buf curl through server reflection, over plaintext HTTP/2.


@pytest.fixture
def reflecting_service(tmp_path: Path) -> Iterator[ServiceProcess]:
    with running_service(tmp_path, {"PYSERVICE_REFLECTION": "1"}) as service:
        yield service


def test_buf_curl_lists_the_methods(reflecting_service: ServiceProcess) -> None:
    listed = subprocess.run(
        [
            *BUF_CURL,
            "--list-methods",
            f"http://{reflecting_service.address}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    methods = {line for line in listed.stdout.splitlines() if line.startswith("user.v1.")}
    service = user_pb2.DESCRIPTOR.services_by_name["UserService"]
    assert methods == {f"{service.full_name}/{method.name}" for method in service.methods}
    assert len(methods) == 6


def curl(service: ServiceProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """buf curl's JSON answer: the response, or the error (code, message, details)."""
    return buf_curl(service.port, method, body)


def test_buf_curl_creates_lists_updates_and_deletes(reflecting_service: ServiceProcess) -> None:
    service = reflecting_service
    made = [
        curl(service, "CreateUser", user_fields(number, role=role))["user"]
        for number, role in enumerate(["USER_ROLE_ADMIN", "USER_ROLE_USER", "USER_ROLE_ADMIN"])
    ]
    ada = made[0]
    assert ada["firstName"] == "Ada" and ada["role"] == "USER_ROLE_ADMIN"  # protojson names
    assert curl(service, "GetUser", {"id": ada["id"]}) == {"user": ada}

    admins = curl(
        service,
        "ListUsers",
        {"pageSize": 10, "filter": "role:USER_ROLE_ADMIN", "orderBy": "last_name desc"},
    )
    assert admins["totalCount"] == 2
    assert [user["lastName"] for user in admins["users"]] == ["Lovelace2", "Lovelace0"]

    # protojson writes a FieldMask as one string of camelCase paths, comma separated; buf
    # curl refuses {"paths": [...]} and snake_case paths itself, before sending anything.
    for refused in ({"paths": ["first_name"]}, "first_name"):
        attempt = subprocess.run(
            [
                *BUF_CURL,
                "--data",
                json.dumps({"id": ada["id"], "updateMask": refused}),
                f"http://{service.address}/user.v1.UserService/UpdateUser",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert attempt.returncode == 1 and "json unmarshal" in attempt.stderr, attempt
    renamed = curl(
        service,
        "UpdateUser",
        {"id": ada["id"], "firstName": "Augusta", "lastName": "ignored", "updateMask": "firstName"},
    )["user"]
    assert renamed["firstName"] == "Augusta" and renamed["lastName"] == ada["lastName"]
    updated_at = datetime.datetime.fromisoformat  # protojson Timestamps: RFC 3339
    assert updated_at(renamed["updatedAt"]) > updated_at(ada["updatedAt"])
    assert renamed["createdAt"] == ada["createdAt"]

    assert curl(service, "DeleteUser", {"id": ada["id"]}) == {}
    missing = curl(service, "GetUser", {"id": ada["id"]})
    assert missing["code"] == "not_found" and missing["message"] == "user not found"
    assert {detail["type"] for detail in missing["details"]} == {
        "google.rpc.ErrorInfo",
        "google.rpc.ResourceInfo",
    }


def test_buf_curl_streams_user_updates(reflecting_service: ServiceProcess) -> None:
    user = curl(reflecting_service, "CreateUser", user_fields(0))["user"]
    stream = subprocess.Popen(
        [
            *BUF_CURL,
            "--data",
            json.dumps({"userIds": [user["id"]]}),
            f"http://{reflecting_service.address}/user.v1.UserService/StreamUserUpdates",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(stream.stdout or ()), daemon=True)
    reader.start()
    update = None
    try:
        # As with Node: write until the stream, subscribed at some moment, prints an update.
        for attempt in range(20):
            curl(
                reflecting_service,
                "UpdateUser",
                {"id": user["id"], "firstName": f"Ada{attempt}", "updateMask": "firstName"},
            )
            update = first_message(printed, seconds=1)
            if update is not None:
                break
    finally:
        stream.kill()
        stream.wait()
        reader.join(5)
    assert update is not None, "".join(printed)
    assert update["type"] == "UPDATE_TYPE_UPDATED"
    assert update["user"]["id"] == user["id"] and update["user"]["firstName"].startswith("Ada")


def first_message(printed: list[str], *, seconds: float) -> dict[str, Any] | None:
    """The first JSON document in what buf curl has printed (one message spans many lines),
    waiting up to `seconds` for it to be complete."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            message: dict[str, Any] = json.JSONDecoder().raw_decode("".join(printed))[0]
            return message
        except json.JSONDecodeError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)
