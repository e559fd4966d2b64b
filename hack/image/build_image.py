"""`make image`: build the Dockerfile with podman and write dist/deploybell-<version>.oci.tar.

    python hack/image/build_image.py                 # local Debian base (mmdebstrap), no registry
    python hack/image/build_image.py --base python:3.11-slim   # a base from a registry (pulled)

Installs the Debian packages it needs (hack/deps.py, as root), caches the base root filesystems
under ~/.cache/deploybell/image and the layers in podman's storage, so a second run takes seconds.
The host's CA bundle and pip configuration reach the build's download step as secrets only.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hack/deps.py
sys.path.insert(0, str(Path(__file__).resolve().parent))

import debian_base
import deps
import image_report
from podman_env import ROOT, ULIMITS, PodmanError, archive_path, image_id, image_ref, podman

CACHE = Path(os.environ.get("DEPLOYBELL_CACHE", Path.home() / ".cache" / "deploybell")) / "image"
# pip settings that name files on the host: the CA bundle is mounted on its own; the others
# would point at nothing inside the build.
HOST_PATH_KEYS = {"cert", "client-cert", "find-links"}


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def ensure_packages() -> None:
    """What `make deps-image` installs (hack/deps.py, one list), when run without make."""
    if deps.main(["deps", "image"]) != 0:
        raise SystemExit(2)


def debian_bases() -> tuple[str, str]:
    """The local runtime and build bases (podman images), made once per mmdebstrap command."""
    codename = debian_base.host_codename()
    sources = debian_base.host_sources(codename)
    options = debian_base.host_apt_options()
    key = debian_base.cache_key(codename, sources, options)
    runtime, build = f"localhost/deploybell-base:{key}", f"localhost/deploybell-build-base:{key}"
    forget_other_bases(key)
    if image_id(runtime) and image_id(build) and all(map(base_image_whole, (runtime, build))):
        return runtime, build
    out = CACHE / f"debian-{codename}-{key}"
    if not all(rootfs_problem(out / name) is None for name in ROOTFS_TARS):
        step(f"making the Debian {codename} base with mmdebstrap (once; ~1 min)")
        make_rootfs(out, lambda into: debian_base.mmdebstrap_command(codename, sources, options,
                                                                     into))  # fmt: skip
    for ref, tar in ((runtime, out / "runtime.tar"), (build, out / "build.tar")):
        podman("import", "--change", 'CMD ["/bin/sh"]', str(tar), ref)
    return runtime, build


ROOTFS_TARS = ("runtime.tar", "build.tar")
# A Debian root filesystem with python3 is ~100 MB; an image far below that is a failed import.
MIN_BASE_BYTES = 10_000_000
TAR_RACE = "file changed as we read it"


def clear_cache() -> str:
    """The command that forgets every cached base, for the messages."""
    bases = "reference=localhost/deploybell-*base"
    return f"rm -rf {CACHE}; podman rmi --force $(podman images -q --filter '{bases}')"


def rootfs_problem(tar: Path) -> str | None:
    """Why a cached root filesystem cannot be used (missing, empty, truncated, no /bin/sh)."""
    if not tar.is_file() or tar.stat().st_size == 0:
        return f"{tar} is missing or empty"
    try:
        with tarfile.open(tar) as archive:
            names = {m.name.removeprefix("./") for m in archive}  # reads to the end
    except (tarfile.TarError, OSError, EOFError) as e:
        return f"{tar} is not a whole tar archive ({e})"
    if not names & {"bin/sh", "usr/bin/sh"}:
        return f"{tar} has no /bin/sh"
    return None


def make_rootfs(out: Path, command_for: Callable[[Path], list[str]]) -> None:
    """mmdebstrap into a temporary folder, checked, then renamed to `out`: a failed or cut
    build never becomes a cache entry. Its tar race on /sys is retried once."""
    partial = out.with_name(f"{out.name}.partial")
    for attempt in (1, 2):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        proc = subprocess.run(command_for(partial), capture_output=True, text=True)
        if proc.returncode == 0 or attempt == 2 or TAR_RACE not in proc.stderr:
            break
        step(f"mmdebstrap: tar raced a mounted filesystem ('{TAR_RACE}'): once more")
    if proc.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise SystemExit(f"mmdebstrap exited {proc.returncode}:\n{proc.stderr[-4000:]}\nNothing "
                         f"was cached; if a later build still fails: {clear_cache()}")  # fmt: skip
    problems = [p for name in ROOTFS_TARS if (p := rootfs_problem(partial / name))]
    if problems:
        shutil.rmtree(partial, ignore_errors=True)
        raise SystemExit(f"mmdebstrap succeeded but {'; '.join(problems)}: nothing was cached "
                         f"(to clear the cache by hand: {clear_cache()})")  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)


def base_image_whole(ref: str) -> bool:
    """A base imported from a bad tar (an older build's 0-byte one) is removed, to be made again."""
    size = podman("image", "inspect", "--format", "{{.Size}}", ref, check=False).stdout.strip()
    if size.isdigit() and int(size) >= MIN_BASE_BYTES:
        return True
    step(f"{ref} is {size or '?'} bytes, not a root filesystem: removing it to make it again")
    podman("rmi", "--force", ref, check=False)
    return False


def forget_other_bases(key: str) -> None:
    """Bases of an older mmdebstrap command (other sources, packages or options) are not used
    again: their tarballs and tags go."""
    for old in CACHE.glob("debian-*"):
        if not old.name.endswith(f"-{key}"):
            shutil.rmtree(old)
    tags = podman("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    ours = ("/deploybell-base", "/deploybell-build-base")
    stale = [t for t in tags if t.split(":")[0].endswith(ours) and not t.endswith(f":{key}")]
    if stale:
        podman("rmi", "--force", *stale, check=False)


def registry_base(base: str) -> tuple[str, str]:
    if not image_id(base):
        step(f"pulling {base}")
        proc = podman("pull", "--quiet", base, check=False)
        if proc.returncode != 0:
            why = proc.stderr.strip()[-500:]
            raise SystemExit(f"could not pull {base} ({why}); without --base, the image is "
                             "built on a local Debian base instead")  # fmt: skip
    return base, base


def host_ca_bundle() -> Path | None:
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):  # fmt: skip
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def host_pip_config() -> str:
    """The host's effective pip settings (files and PIP_* variables) as one pip.conf."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    sections: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, quoted = line.partition("=")
        section, _, key = name.rpartition(".")
        if not key or key in HOST_PATH_KEYS:
            continue
        value = str(ast.literal_eval(quoted))
        sections.setdefault("global" if section == ":env:" else section, []).append(
            f"{key} = {value}"
        )
    return "".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items())


@contextlib.contextmanager
def build_secrets() -> Iterator[list[str]]:
    """`--secret` flags for the host's CA bundle and pip configuration (a private temp file)."""
    flags = []
    if ca := host_ca_bundle():
        flags += ["--secret", f"id=ca.pem,src={ca}"]
    with tempfile.TemporaryDirectory(prefix="deploybell-image-") as tmp:
        pip_conf = Path(tmp) / "pip.conf"
        pip_conf.write_text(host_pip_config())
        pip_conf.chmod(0o600)
        flags += ["--secret", f"id=pip.conf,src={pip_conf}"]
        yield flags


def build(base: str, build_base: str, ref: str) -> str:
    with build_secrets() as secrets:
        command = [
            "build", "--layers", "--pull=never", "--network", "host", *ULIMITS, *secrets,
            "--build-arg", f"BASE={base}", "--build-arg", f"BUILD_BASE={build_base}",
            "--tag", ref, "--file", str(ROOT / "Dockerfile"), str(ROOT),
        ]  # fmt: skip
        proc = podman(*command, check=False, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"podman build exited {proc.returncode}:\n{proc.stdout[-6000:]}"
                         f"{proc.stderr[-3000:]}")  # fmt: skip
    found = image_id(ref)
    assert found, f"{ref} was built but cannot be inspected"
    return found


def save(ref: str, built: str) -> Path:
    """The OCI archive (gzip layers); kept as it is while the image has not changed."""
    archive = archive_path()
    stamp = archive.with_suffix(".id")
    if archive.exists() and stamp.exists() and stamp.read_text() == built:
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    podman("save", "--quiet", "--format", "oci-archive", "--output", str(partial), ref)
    partial.rename(archive)
    stamp.write_text(built)
    return archive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="", help="a registry's base image (pulled when missing); "
                        "default: a local Debian base made by mmdebstrap")  # fmt: skip
    args = parser.parse_args()
    started = time.monotonic()
    ensure_packages()
    ref = image_ref()
    try:
        base, build_base = registry_base(args.base) if args.base else debian_bases()
        step(f"building {ref} on {base}")
        built = build(base, build_base, ref)
        archive = save(ref, built)
        took = time.monotonic() - started
        image_report.summary(ref, archive, took)
    except PodmanError as e:
        raise SystemExit(str(e)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
