"""HTTPS served by the API itself (BOURSE_TLS_CERTFILE / BOURSE_TLS_KEYFILE): a real TLS
handshake with a certificate made here, HSTS on every response, Secure cookies, links in
emails on https, and plain HTTP on that port gets nothing."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bourse.settings import Settings
from tests.support.server import Api, running_api


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@pytest.fixture(scope="module")
async def https_api(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    certfile, keyfile = self_signed(tmp_path_factory.mktemp("tls"))
    tls = settings.model_copy(update={"tls_certfile": certfile, "tls_keyfile": keyfile})
    assert tls.link_base_url().startswith("https://")
    async with running_api(tls) as api:
        yield api


async def test_the_api_answers_over_tls_with_hsts_and_secure_cookies(https_api: Api) -> None:
    assert https_api.base_url.startswith("https://")
    health = await https_api.http.get("/healthz")
    assert health.status_code == 200
    assert health.headers["strict-transport-security"].startswith("max-age=")
    body = await https_api.gql("{ __typename }")
    assert body["data"] == {"__typename": "Query"}
    form = await https_api.http.get("/console/login")
    assert "secure" in form.headers["set-cookie"].lower()


async def test_plain_http_on_the_tls_port_gets_nothing(https_api: Api) -> None:
    plain = https_api.base_url.replace("https://", "http://")
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{plain}/healthz")
