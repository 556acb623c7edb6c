"""A throwaway certificate authority and certificates for the TLS tests, made with openssl."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Authority:
    """A CA's certificate and key (PEM files)."""

    cert: Path
    key: Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_authority(folder: Path, name: str = "finmon-test-ca") -> Authority:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
        "-days", "2", "-subj", f"/CN={name}",
    )  # fmt: skip
    return Authority(cert, key)


def make_certificate(authority: Authority, folder: Path, name: str, hosts: list[str]) -> Path:
    """A PEM file with the private key and the certificate of ``name`` for ``hosts``, signed by ``authority``."""
    folder.mkdir(parents=True, exist_ok=True)
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
    names = ",".join(("IP:" if host.replace(".", "").isdigit() else "DNS:") + host for host in hosts)
    extensions = folder / f"{name}.ext"
    extensions.write_text(f"subjectAltName={names}\nextendedKeyUsage=serverAuth,clientAuth\n")
    openssl(
        "x509", "-req", "-in", str(request), "-CA", str(authority.cert), "-CAkey", str(authority.key),
        "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(extensions),
    )  # fmt: skip
    bundle = folder / f"{name}.pem"
    bundle.write_text(key.read_text() + cert.read_text())
    return bundle
