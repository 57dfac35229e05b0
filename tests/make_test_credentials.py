"""Writes throwaway TLS and token files for tests into DIR:
ca.pem (a new CA), server.pem and server.key (a server certificate it signs,
valid for 127.0.0.1 and localhost), token (a random bearer token) and tokens
(a tokens file naming it as principal NAME with SCOPES).

Usage: make_test_credentials.py DIR NAME SCOPES   (e.g. DIR tester conv,info)
Runs with Debian's python3-cryptography."""

import datetime
import hashlib
import ipaddress
import pathlib
import secrets
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(key, common_name, issuer_key, issuer_name, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name))
               .issuer_name(issuer_name or _name(common_name))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def main(directory, name, scopes):
    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate(ca_key, "convserve test ca", ca_key, None, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(key, "convserve", ca_key, ca.subject, ca=False)
    (out / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (out / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (out / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    token = secrets.token_urlsafe(24)
    (out / "token").write_text(token + "\n")
    (out / "tokens").write_text(
        f"{hashlib.sha256(token.encode()).hexdigest()} {name} {scopes}\n")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
