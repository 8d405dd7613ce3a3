"""TLS and mutual TLS from PEM files, with certificates made for the test."""

import datetime
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from protoc_gen_pyservice import runtime
from protoc_gen_pyservice.runtime import serve
from user.v1 import user_client, user_pb2, user_service

from tests.behaviour.in_memory_users import InMemoryUsers


def issue(
    name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, folder: Path
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    certificate = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (folder / f"{name}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificate, key


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    authority = issue("ca", None, tmp_path)
    issue("server", authority, tmp_path)
    issue("client", authority, tmp_path)
    return tmp_path


async def call(port: int, credentials: grpc.ChannelCredentials) -> user_pb2.ListUsersResponse:
    async with user_client.UserServiceClient.connect(
        f"localhost:{port}",
        credentials=credentials,
        options=[("grpc.ssl_target_name_override", "localhost")],
    ) as users:
        return await users.list_users(user_pb2.ListUsersRequest(page_size=1), timeout=5)


async def test_tls_and_mutual_tls(pki: Path) -> None:
    ca = (pki / "ca.crt").read_bytes()
    tls = serve.TlsFiles(pki / "server.crt", pki / "server.key")
    service = serve.build_server(
        [(user_service.add_user_service_to_server, InMemoryUsers())],
        serve.ServerSettings(address="127.0.0.1:0", tls=tls),
    )
    await service.start()
    try:
        reply = await call(service.port, grpc.ssl_channel_credentials(ca))
        assert reply.total_count == 0
    finally:
        await service.stop(0)

    mutual = serve.TlsFiles(pki / "server.crt", pki / "server.key", client_ca=pki / "ca.crt")
    service = serve.build_server(
        [(user_service.add_user_service_to_server, InMemoryUsers())],
        serve.ServerSettings(address="127.0.0.1:0", tls=mutual),
    )
    await service.start()
    try:
        with pytest.raises(runtime.Unavailable):  # no client certificate: handshake refused
            await call(service.port, grpc.ssl_channel_credentials(ca))
        with_certificate = grpc.ssl_channel_credentials(
            ca, (pki / "client.key").read_bytes(), (pki / "client.crt").read_bytes()
        )
        assert (await call(service.port, with_certificate)).total_count == 0
    finally:
        await service.stop(0)
