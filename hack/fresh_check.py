"""`make fresh-check`: the README's two commands on a bare Debian, in a podman container.

    python hack/fresh_check.py                        # make demo, then make test (image tests out)
    FRESH_PYTEST_ARGS='tests/providers/test_irc.py' python hack/fresh_check.py   # a subset

The container is what README, Prerequisites, calls a fresh machine: Debian (minbase, from the
host's own apt sources, made by mmdebstrap and cached like `make image`'s base) with python3,
make and openssl, plus the host's Go toolchain mounted read-only. The repository goes in as a
clean `git archive` of the working tree's tracked files (HEAD plus uncommitted edits), so nothing
untracked or built here (.venv, dist/, the cluster binaries) comes along. The Go module and build
caches and pip's cache are mounted from the host, so the cluster binaries are linked from cached
packages instead of compiled for ~15 minutes. Each command's exit and time is reported; a demo
that left a sink out counts as failed (a missing install step must not pass unnoticed).

Image tests (`-m image`) are left out inside: they would run podman inside this podman container.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "image"))
import build_image
import debian_base
from podman_env import PODMAN, ROOT, ULIMITS, image_id, podman

CACHE = build_image.CACHE.parent / "fresh"
PACKAGES = ("python3", "make", "openssl", "ca-certificates")  # README, Prerequisites
HOME = "/root"
SRC = "/src/deploybell"
PYTEST_ARGS = os.environ.get("FRESH_PYTEST_ARGS", "-m 'not image'")
# Host settings the tools inside need to reach the same registries the same way.
PASSED_ENV = (
    *("GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOINSECURE", "GOFLAGS"),
    *("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"),
)


@dataclass(frozen=True)
class Outcome:
    command: str
    exit: int
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.exit == 0 and not self.note


def step(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def go_env(name: str) -> str:
    return subprocess.run(
        ["go", "env", name], capture_output=True, text=True, check=True
    ).stdout.strip()


def bare_debian() -> str:
    """The bare Debian image (tagged by what decides its contents), made once."""
    codename = debian_base.host_codename()
    sources = debian_base.host_sources(codename)
    options = debian_base.host_apt_options()
    command = fresh_command(codename, sources, options, Path("OUT"))
    key = hashlib.sha256("\0".join(command).encode()).hexdigest()[:12]
    ref = f"localhost/deploybell-fresh:{key}"
    if image_id(ref):
        return ref
    out = CACHE / f"debian-{codename}-{key}"
    if build_image.rootfs_problem(out / "rootfs.tar"):
        step(f"making a bare Debian {codename} with mmdebstrap (once; ~1 min)")
        partial = out.with_name(out.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(fresh_command(codename, sources, options, partial),
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0 or build_image.rootfs_problem(partial / "rootfs.tar"):
            raise SystemExit(f"mmdebstrap exited {proc.returncode}: {proc.stderr[-3000:]}")
        partial.rename(out)
    podman("import", "--change", 'CMD ["/bin/bash"]', str(out / "rootfs.tar"), ref)
    return ref


def fresh_command(codename: str, sources: list[debian_base.Source], apt_options: list[str],
                  out: Path) -> list[str]:  # fmt: skip
    """minbase (apt, bash, coreutils) and the prerequisites; the host's sources stay in it, since
    `make deps` inside installs with apt."""
    return [
        "mmdebstrap", "--variant=minbase", "--mode=root", "--format=tar", "--quiet",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join(PACKAGES)}",
        *(f"--aptopt={option}" for option in apt_options),
        codename, str(out / "rootfs.tar"), *(line for s in sources for line in s.lines()),
    ]  # fmt: skip


def repository_copy(into: Path) -> None:
    """The tracked files as they are now (git stash create: HEAD plus uncommitted edits)."""
    ref = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip() or "HEAD"  # fmt: skip
    archive = into.parent / "repo.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=ROOT,
                   check=True)  # fmt: skip
    into.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="tar")
    archive.unlink()


def mounts(repo: Path) -> list[str]:
    """The repository, the host's Go toolchain (read-only) and the three caches."""
    pairs = [
        (str(repo), SRC, "rw"),
        (go_env("GOROOT"), "/usr/local/go", "ro"),
        (go_env("GOMODCACHE"), f"{HOME}/go/pkg/mod", "rw"),
        (go_env("GOCACHE"), f"{HOME}/.cache/go-build", "rw"),
        (str(Path.home() / ".cache" / "pip"), f"{HOME}/.cache/pip", "rw"),
    ]
    # The CA bundle the host's tools trust (a proxy's CA reaches apt, pip and go inside too).
    if (ca := build_image.host_ca_bundle()) is not None:
        pairs.append((str(ca), "/etc/ssl/certs/ca-certificates.crt", "ro"))
    for path in (os.environ.get("PIP_FIND_LINKS", ""),):
        if path and Path(path).is_dir():
            pairs.append((path, path, "ro"))
    Path(pairs[4][0]).mkdir(parents=True, exist_ok=True)
    return [f"--volume={host}:{inside}:{mode}" for host, inside, mode in pairs]


def environment() -> list[str]:
    env = {"HOME": HOME, "PATH": "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
           "/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}  # fmt: skip
    env |= {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in PASSED_ENV}
    if build_image.host_ca_bundle() is not None:
        env |= {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
    return [f"--env={k}={v}" for k, v in env.items()]


def run_inside(name: str, command: str) -> Outcome:
    step(f"inside: {command}")
    started = time.monotonic()
    exec_in = [*PODMAN, "exec", "--workdir", SRC, name, "bash", "-c", f"{command} 2>&1"]
    proc = subprocess.Popen(exec_in, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    left_out = ""
    for line in proc.stdout:
        print(f"    {line}", end="", flush=True)
        if line.startswith("==> [") and "sink left out:" in line:  # the demo's own line
            left_out = "the demo left a sink out: " + line.split("sink left out:", 1)[1].strip()
    code = proc.wait()
    return Outcome(command, code, time.monotonic() - started, left_out[:200])


def main() -> int:
    began = time.monotonic()
    ref = bare_debian()
    name = f"deploybell-fresh-{uuid.uuid4().hex[:8]}"
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="deploybell-fresh-") as tmp:
        repo = Path(tmp) / "deploybell"
        repository_copy(repo)
        step(f"container {name} from {ref}: repository at {SRC}, Go/pip caches from the host")
        podman("run", "--detach", "--name", name, "--network", "host", "--pids-limit", "-1",
               *ULIMITS, *mounts(repo), *environment(), ref, "sleep", "infinity")  # fmt: skip
        try:
            outcomes.append(run_inside(name, "make demo"))
            outcomes.append(run_inside(name, f"make test PYTEST_ARGS={shlex.quote(PYTEST_ARGS)}"))
        finally:
            podman("rm", "--force", "--time", "5", name, check=False, timeout=120)
    step(f"fresh-check ({time.monotonic() - began:.0f}s in all):")
    for o in outcomes:
        verdict = "ok" if o.ok else "FAILED"
        print(f"  {verdict:<6} exit {o.exit:<3} {o.seconds:6.0f}s  {o.command}  {o.note}".rstrip())
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
