"""The check that no host build input was left in the image finds each kind of leak in an image
filesystem (a tar, as `podman export` writes it), and passes a clean one."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile

import pytest

from tests.support.operator import ROOT

sys.path.insert(0, str(ROOT / "hack" / "image"))
import image_report

DEBIAN_CERT = b"-----BEGIN CERTIFICATE-----\nREJJQU4=\n-----END CERTIFICATE-----\n"
HOST_CERT = b"-----BEGIN CERTIFICATE-----\nSE9TVC1PTkxZ\n-----END CERTIFICATE-----\n"
HOST_BUNDLE = DEBIAN_CERT + HOST_CERT
PIP_CONF = "[global]\nindex-url = https://user:token@index.internal.test/simple\n"


def exported(files: dict[str, bytes]) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf)


def scan(files: dict[str, bytes]) -> list[str]:
    image = {
        "etc/ssl/certs/ca-certificates.crt": DEBIAN_CERT,
        "usr/bin/python3": b"\x7fELF",
        **files,
    }
    host_certs = set(image_report.PEM.findall(HOST_BUNDLE))
    digest = hashlib.sha256(HOST_BUNDLE).hexdigest()
    return image_report.scan(exported(image), host_certs, digest, PIP_CONF.encode())


def test_a_clean_image_passes() -> None:
    assert scan({}) == []


@pytest.mark.parametrize(
    ("files", "found"),
    [
        ({"opt/ca.pem": HOST_BUNDLE}, "opt/ca.pem: the host's CA bundle"),
        ({"usr/local/share/ca-certificates/x.crt": HOST_CERT},
         "usr/local/share/ca-certificates/x.crt: a certificate only the host trusts"),
        ({"etc/pip.conf": b"[global]\n"}, "etc/pip.conf: a pip configuration or build secret"),
        ({"run/secrets/ca.pem": b"x"}, "run/secrets/ca.pem: a pip configuration or build secret"),
        ({"opt/venv/pip.ini": PIP_CONF.encode()}, "opt/venv/pip.ini: the host's pip configuration"),
    ],
)  # fmt: skip
def test_each_leak_is_named(files: dict[str, bytes], found: str) -> None:
    assert scan(files) == [found]


def test_a_file_as_its_wheel_shipped_it_is_no_host_input() -> None:
    """A package's own CA bundle (botocore ships one) is what its hashed wheel holds, so a public
    certificate in it that the image's Debian bundle lacks is not a leak; the same file changed
    after installation is."""
    site = "opt/venv/lib/python3.11/site-packages"
    digest = image_report._record_digest(HOST_CERT)
    record = f"pkg/cacert.pem,{digest},{len(HOST_CERT)}\n".encode()
    shipped = {f"{site}/pkg/cacert.pem": HOST_CERT, f"{site}/pkg-1.0.dist-info/RECORD": record}
    assert scan(shipped) == []
    changed = {**shipped, f"{site}/pkg/cacert.pem": HOST_CERT + b"\n"}
    assert scan(changed) == [f"{site}/pkg/cacert.pem: a certificate only the host trusts"]
