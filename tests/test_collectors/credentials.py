"""Test credentials: throwaway certificates, a fake `az`, and a host's managed-identity env."""

from __future__ import annotations

import json
import stat
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

AZURE_CLI_APP_ID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
"""The Azure CLI's own (first-party) application id: its tokens are issued to it."""

# Every variable azure-identity's ManagedIdentityCredential reads to pick a host (1.27,
# aio/_credentials/managed_identity.py); a test sets the ones of the host it plays.
MANAGED_IDENTITY_VARIABLES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
)


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and its private key."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The public part, as uploaded to an app registration."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def sha1_thumbprint(self) -> str:
        """The thumbprint the Entra portal shows (hex of the DER's SHA-1)."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()

    def key_pem(self, password: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def write_pem(self, path: Path, password: bytes | None = None) -> Path:
        """Key and certificate in one PEM file, as azure-identity's CertificateCredential reads."""
        path.write_bytes(self.key_pem(password) + self.cert_pem)
        path.chmod(0o600)
        return path

    def write_pfx(self, path: Path, password: bytes | None = None) -> Path:
        """Key and certificate as a PKCS#12 (.pfx) file, as Windows and the portal export it."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"scimwatch", self.key, self.certificate, None, encryption
            )
        )
        path.chmod(0o600)
        return path

    def key_material(self) -> list[str]:
        """Lines of the unencrypted private key's base64 body: none may ever be logged or stored."""
        lines = self.key_pem().decode().splitlines()
        return [line for line in lines if line and not line.startswith("-----")]


def make_certificate(name: str = "scimwatch-test", *, days: int = 365) -> Certificate:
    """A throwaway self-signed RSA certificate valid from a minute ago for `days` days."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return Certificate(key, certificate)


def clear_managed_identity_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every managed-identity variable, as on a machine outside Azure."""
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


AzMode = Literal["signed_in", "signed_out"]


@dataclass(frozen=True)
class FakeAz:
    """A stand-in `az` on PATH: prints what `az account get-access-token` prints."""

    bin_dir: Path
    argv_log: Path

    def calls(self) -> list[list[str]]:
        """The argument lists `az` was run with, oldest first."""
        if not self.argv_log.exists():
            return []
        return [json.loads(line) for line in self.argv_log.read_text().splitlines()]


_FAKE_AZ = """#!{python}
import json, sys
with open({argv_log!r}, "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if {mode!r} == "signed_out":
    sys.stderr.write("ERROR: Please run 'az login' to setup account.\\n")
    sys.exit(1)
sys.stdout.write({answer!r} + "\\n")
"""


def install_fake_az(
    directory: Path, *, access_token: str, tenant_id: str, mode: AzMode = "signed_in"
) -> FakeAz:
    """Write an executable `az` into `directory`/bin that answers like a signed-in Azure CLI.

    The real CLI cannot exist here; the fake prints the JSON `az account get-access-token
    --output json` prints (accessToken, expiresOn as local time, expires_on as epoch seconds
    since CLI 2.54, subscription, tenant, tokenType) and logs its arguments.
    """
    bin_dir = directory / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    argv_log = directory / "az-argv.jsonl"
    expires_on = int(time.time()) + 3599
    answer = {
        "accessToken": access_token,
        "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),  # noqa: DTZ006 - az prints local time
        "expires_on": expires_on,
        "subscription": "00000000-0000-4000-8000-000000000001",
        "tenant": tenant_id,
        "tokenType": "Bearer",
    }
    script = bin_dir / "az"
    script.write_text(
        _FAKE_AZ.format(
            python=sys.executable,
            argv_log=str(argv_log),
            mode=mode,
            answer=json.dumps(answer, indent=2),
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return FakeAz(bin_dir, argv_log)
