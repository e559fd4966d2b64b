"""How podman runs on this kind of machine, shared by `make image` and the image tests.

crun refuses the hybrid cgroup layout ("cgroups in hybrid mode not supported"), so runc runs the
containers; podman's default ulimits are above what the machine allows, so they are explicit.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PODMAN = ("podman", "--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096")
REPOSITORY = "localhost/deploybell"
DIST = ROOT / "dist"


class PodmanError(RuntimeError):
    """A podman command failed; the message carries its output."""


def package_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def image_ref(version: str | None = None) -> str:
    return f"{REPOSITORY}:{version or package_version()}"


def archive_path(version: str | None = None) -> Path:
    return DIST / f"deploybell-{version or package_version()}.oci.tar"


def podman(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """podman with this machine's runtime; a failure carries podman's own words."""
    proc = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args[:3])} ... exited {proc.returncode}:\n"
                         f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")  # fmt: skip
    return proc


def image_id(ref: str) -> str | None:
    proc = podman("image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def run_in_image(ref: str, *command: str, user: str = "") -> str:
    """Run one command in a throwaway container of the image (as its user, no network)."""
    entrypoint, *args = command
    as_user = ["--user", user] if user else []
    return podman("run", "--rm", *ULIMITS, "--network", "none", *as_user,
                  "--entrypoint", entrypoint, ref, *args).stdout  # fmt: skip
