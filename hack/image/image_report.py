"""What `make image` tells about the image: sizes, the installed packages (checked against the
lock), a CycloneDX SBOM, and that no host build input was left in it.

    python hack/image/image_report.py without kubernetes   # what dropping a dependency would save
"""

from __future__ import annotations

import base64
import hashlib
import json
import posixpath
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from podman_env import DIST, PODMAN, ROOT, image_ref, package_version, podman, run_in_image

LOCK = ROOT / "requirements" / "runtime.lock"
VENV_BIN = Path(sys.executable).parent
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.S)
# Run inside the image: name → [version, bytes of its installed files] of /opt/venv's packages.
LIST_INSTALLED = """
import importlib.metadata as m, json, sys
out = {}
for d in m.distributions(path=[p for p in sys.path if p.startswith("/opt/venv/")]):
    files = [f.locate() for f in d.files or []]
    out[d.metadata["Name"]] = [d.version, sum(p.stat().st_size for p in files if p.is_file())]
print(json.dumps(out))
"""
# Run inside the image: the gzip size of the files of the packages named in argv.
GZIP_SIZE = """
import gzip, importlib.metadata as m, io, sys, tarfile
gone, buf = set(sys.argv[1:]), io.BytesIO()
with gzip.GzipFile(fileobj=buf, mode="wb") as z, tarfile.open(fileobj=z, mode="w") as t:
    for d in m.distributions(path=[p for p in sys.path if p.startswith("/opt/venv/")]):
        if d.metadata["Name"].lower().replace("_", "-") in gone:
            for p in (f.locate() for f in d.files or []):
                if p.is_file():
                    t.add(str(p))
print(len(buf.getvalue()))
"""


def mb(size: float) -> str:
    return f"{size / 1e6:.0f} MB"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path = LOCK) -> dict[str, str]:
    """name → version of a `uv pip compile` lock."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock.read_text(), re.M)
    return {canonical(name): version for name, version in pins}


def installed(ref: str) -> dict[str, tuple[str, int]]:
    """name → (version, installed bytes) of the image's virtualenv."""
    raw = json.loads(run_in_image(ref, "/opt/venv/bin/python", "-c", LIST_INSTALLED))
    return {canonical(name): (version, size) for name, (version, size) in raw.items()}


def sizes(ref: str, archive: Path) -> tuple[int, int]:
    """(uncompressed, compressed): podman's size of the image; the archive's blobs (gzip)."""
    uncompressed = int(podman("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile(f"blobs/{digest.replace(':', '/')}")
            assert member is not None, digest
            return member.read()

        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
    compressed = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
    return uncompressed, compressed


def sbom(out: Path) -> None:
    """CycloneDX JSON of what the image installs: the lock's packages under deploybell (made
    again only when the lock or pyproject.toml changed)."""
    pyproject = str(ROOT / "pyproject.toml")
    if out.exists() and out.stat().st_mtime > max(
        Path(p).stat().st_mtime for p in (LOCK, pyproject)
    ):
        return
    subprocess.run(
        [str(VENV_BIN / "cyclonedx-py"), "requirements", "--pyproject", pyproject,
         "--output-reproducible", "--of", "JSON", "-o", str(out), str(LOCK)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def check_installed(found: dict[str, tuple[str, int]]) -> list[str]:
    """The image has exactly the lock's pins plus deploybell itself."""
    wanted = {**locked(), "deploybell": package_version()}
    have = {name: version for name, (version, _) in found.items()}
    names = sorted(set(wanted) | set(have))
    return [f"{n}: image {have.get(n)}, lock {wanted.get(n)}" for n in names
            if have.get(n) != wanted.get(n)]  # fmt: skip


def summary(ref: str, archive: Path, took: float) -> None:
    found = installed(ref)
    problems = check_installed(found)
    if problems:
        raise SystemExit("the image's packages differ from the lock:\n" + "\n".join(problems))
    bom = DIST / f"deploybell-{package_version()}.cdx.json"
    sbom(bom)
    uncompressed, compressed = sizes(ref, archive)
    venv = int(run_in_image(ref, "du", "-sb", "/opt/venv").split()[0])
    print(f"\n{len(found)} packages in /opt/venv ({mb(venv)} with bytecode), as locked:")
    for name, (version, size) in sorted(found.items()):
        print(f"  {name}=={version}  ({size / 1e6:.1f} MB)")
    print(f"SBOM (CycloneDX JSON): {bom.relative_to(ROOT)}")
    print(f"image {ref}: {mb(uncompressed)} uncompressed, {mb(compressed)} compressed")
    print(f"archive {archive.relative_to(ROOT)} ({mb(archive.stat().st_size)}), in {took:.0f} s")


def without(names: Iterable[str], ref: str) -> None:
    """What the image would lose if pyproject.toml dropped these packages: the pins only they
    bring, and the bytes (and gzip bytes) those pins install."""
    drop = {canonical(n) for n in names}
    tomllib = __import__("tomllib")
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    kept = [d for d in deps if canonical(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) not in drop]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "requirements.in").write_text("\n".join(kept) + "\n")
        subprocess.run([str(VENV_BIN / "uv"), "pip", "compile", "--quiet", "--python-version",
                        "3.11", "--python-platform", "linux", "requirements.in", "-o", "lock"],
                       cwd=tmp, check=True)  # fmt: skip
        smaller = locked(Path(tmp) / "lock")
    gone = sorted(name for name in locked() if name not in smaller)
    found = installed(ref)
    saved = sum(found[name][1] for name in gone)
    compressed = int(run_in_image(ref, "/opt/venv/bin/python", "-c", GZIP_SIZE, *gone).strip())
    print(f"without {', '.join(sorted(drop))}: {len(gone)} fewer packages ({', '.join(gone)})")
    print(f"saves {mb(saved)} uncompressed, ~{mb(compressed)} compressed")


def host_inputs_left(ref: str, ca_bundle: Path | None, pip_conf: str) -> list[str]:
    """Files of the image that hold the host's CA bundle, a certificate only the host trusts,
    or the host's pip configuration; empty when none does."""
    host_certs = set(PEM.findall(ca_bundle.read_bytes())) if ca_bundle else set()
    ca_digest = hashlib.sha256(ca_bundle.read_bytes()).hexdigest() if ca_bundle else ""
    container = podman("create", ref).stdout.strip()
    try:
        with tempfile.TemporaryFile() as exported:
            subprocess.run([*PODMAN, "export", container], stdout=exported, check=True)
            exported.seek(0)
            return scan(tarfile.open(fileobj=exported), host_certs, ca_digest, pip_conf.encode())
    finally:
        podman("rm", "--force", container)


def scan(
    tar: tarfile.TarFile, host_certs: set[bytes], ca_digest: str, pip_conf: bytes
) -> list[str]:
    def read(member: tarfile.TarInfo) -> bytes:
        f = tar.extractfile(member) if member.isfile() else None
        return f.read() if f else b""

    members = tar.getmembers()
    bundle = next((m for m in members if m.name == "etc/ssl/certs/ca-certificates.crt"), None)
    host_only = host_certs - set(PEM.findall(read(bundle) if bundle else b""))
    shipped = wheel_files(members, read)
    found = []
    for member in members:
        name, data = member.name, read(member)
        if shipped.get(name) == _record_digest(data):
            continue  # as its wheel shipped it (the lock pins the wheel's hash): e.g. a CA bundle
        if name.endswith("pip.conf") or name.startswith("run/secrets/"):
            found.append(f"{name}: a pip configuration or build secret")
        elif ca_digest and hashlib.sha256(data).hexdigest() == ca_digest:
            found.append(f"{name}: the host's CA bundle")
        elif pip_conf.strip() and pip_conf.strip() in data:
            found.append(f"{name}: the host's pip configuration")
        elif any(cert in data for cert in host_only):
            found.append(f"{name}: a certificate only the host trusts")
    return found


def wheel_files(
    members: Iterable[tarfile.TarInfo], read: Callable[[tarfile.TarInfo], bytes]
) -> dict[str, str]:
    """Each file an installed wheel's RECORD lists, by its path in the image, with the digest the
    wheel gave it (`sha256=` in RECORD's urlsafe base64)."""
    out: dict[str, str] = {}
    for member in members:
        if not member.name.endswith(".dist-info/RECORD"):
            continue
        site = member.name.rsplit("/", 2)[0]
        for line in read(member).decode(errors="replace").splitlines():
            path, _, rest = line.partition(",")
            digest = rest.partition(",")[0]
            if digest.startswith("sha256=") and not path.startswith("/"):
                out[posixpath.normpath(f"{site}/{path}")] = digest
    return out


def _record_digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "without":
        raise SystemExit(__doc__)
    without(sys.argv[2:], image_ref())
