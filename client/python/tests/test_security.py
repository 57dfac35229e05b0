"""The client over TLS with a bearer token, against a server run with
--tls-cert, --tls-key and --auth-tokens-file."""

import asyncio
import datetime
import hashlib
import ipaddress

import grpc
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import convserve
import convserve.aio
from conftest import running_server

TOKEN = "python-test-token-91d2"
VIEWER_TOKEN = "python-viewer-token-77"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject_key, common_name, issuer_key, issuer_name, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(issuer_name or _name(common_name))
               .public_key(subject_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_key, "test ca", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(server_key, "convserve", ca_key, ca.subject, ca=False)
    (directory / "ca.pem").write_bytes(_pem(ca))
    (directory / "server.pem").write_bytes(_pem(server))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (directory / "tokens").write_text(
        f"{hashlib.sha256(TOKEN.encode()).hexdigest()} python conv,register,info\n"
        f"{hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest()} viewer info\n")
    (directory / "token").write_text(TOKEN + "\n")
    ca_path = str(directory / "ca.pem")
    with running_server("--tls-cert", str(directory / "server.pem"),
                        "--tls-key", str(directory / "server.key"),
                        "--auth-tokens-file", str(directory / "tokens"),
                        root_certificates=ca_path) as address:
        yield address, ca_path, str(directory / "token")


def test_a_token_over_tls_is_served(tls_server):
    address, ca, token_file = tls_server
    x = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    w = np.ones((3, 3, 1, 1), dtype=np.float32)
    with convserve.Client(address, timeout=30, root_certificates=ca,
                          token_file=token_file) as client:
        y = client.conv2d(x, w, strides=2, padding="SAME")
    np.testing.assert_array_equal(
        y[0, :, :, 0], [[16, 33, 28], [69, 117, 87], [76, 123, 88]])


def test_no_token_is_unauthenticated_and_a_missing_scope_denied(tls_server):
    address, ca, _ = tls_server
    x = np.ones((1, 3, 3, 1), dtype=np.float32)
    w = np.ones((1, 1, 1, 1), dtype=np.float32)
    with convserve.Client(address, timeout=30, root_certificates=ca) as client:
        with pytest.raises(convserve.ConvServeError) as error:
            client.conv2d(x, w, strides=1, padding="VALID")
        assert error.value.code == grpc.StatusCode.UNAUTHENTICATED
        assert client.health() == "SERVING"  # probes need no token
    with convserve.Client(address, timeout=30, root_certificates=ca,
                          token=VIEWER_TOKEN) as client:
        assert client.server_info()["version"]
        with pytest.raises(convserve.ConvServeError) as error:
            client.conv2d(x, w, strides=1, padding="VALID")
        assert error.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_the_asyncio_client_over_tls_with_a_token(tls_server):
    address, ca, token_file = tls_server
    x = np.arange(1, 26, dtype=np.float32).reshape(1, 5, 5, 1)
    w = np.ones((3, 3, 1, 1), dtype=np.float32)

    async def main():
        async with convserve.aio.Client(address, timeout=30, root_certificates=ca,
                                        token_file=token_file) as client:
            y = await client.conv2d(x, w, strides=2, padding="SAME")
        async with convserve.aio.Client(address, timeout=30, root_certificates=ca) as client:
            with pytest.raises(convserve.ConvServeError) as error:
                await client.conv2d(x, w, strides=1, padding="VALID")
        return y, error.value.code

    y, code = asyncio.run(main())
    np.testing.assert_array_equal(
        y[0, :, :, 0], [[16, 33, 28], [69, 117, 87], [76, 123, 88]])
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_token_is_never_sent_in_plaintext():
    with pytest.raises(ValueError, match="needs TLS"):
        convserve.Client("127.0.0.1:1", token="secret")
    with pytest.raises(ValueError, match="needs TLS"):
        convserve.aio.Client("127.0.0.1:1", token="secret")
