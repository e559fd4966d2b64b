"""A local Debian base for the image, made by mmdebstrap from the host's own apt sources.

Two root filesystems come out of one mmdebstrap run: `build` (with `python3 -m venv`) and
`runtime` (the same minus the venv packages). No registry is needed, and nothing about the
host's mirrors is written into this repository or left in the images.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

APT_ETC = Path("/etc/apt")
RUNTIME_PACKAGES = ("python3", "ca-certificates")
VENV_PACKAGES = ("python3-venv", "python3.11-venv", "python3-pip-whl", "python3-setuptools-whl")
# Only what the host's apt needs to fetch from its mirrors (snapshot mirrors: no Valid-Until).
APT_OPTIONS = ("Acquire::Check-Valid-Until", "Acquire::Check-Date", "Acquire::Retries",
               "Acquire::http::Proxy", "Acquire::https::Proxy")  # fmt: skip
DPKG_OPTIONS = (
    *(f"path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale", "lintian")),
    "path-include=/usr/share/doc/*/copyright",  # licences stay: the image is redistributed
)
# Hooks get the root filesystem as $1. The build rootfs is taken before the venv packages go;
# apt's configuration (the host's mirrors) leaves both: nothing in the images runs apt. The
# info index is generated, so path-exclude does not keep it out.
CLEANED = (
    "etc/apt/sources.list",
    "etc/apt/sources.list.d/*",
    "etc/apt/apt.conf.d/99mmdebstrap",
    "var/lib/apt/lists/*",
    "usr/share/info/dir*",
)
CLEAN = "rm -rf " + " ".join(f'"$1"/{path}' for path in CLEANED)


@dataclass(frozen=True)
class Source:
    """One `deb` entry of the host's apt configuration."""

    uris: tuple[str, ...]
    suites: tuple[str, ...]
    signed_by: str = ""

    def lines(self) -> list[str]:
        """One-line-style entries, as mmdebstrap takes them for MIRROR."""
        options = f"[signed-by={self.signed_by}] " if self.signed_by else ""
        return [f"deb {options}{uri} {suite} main" for uri in self.uris for suite in self.suites]


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    for line in os_release.read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit(f"{os_release} names no VERSION_CODENAME: not a Debian host")


def parse_deb822(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of a `.sources` file as field → value (continuation lines joined)."""
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields


def parse_one_line(text: str) -> Iterator[dict[str, str]]:
    """`deb [options] uri suite components...` lines as deb822-like fields."""
    for line in text.splitlines():
        match = re.match(r"\s*(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s+(.*)", line)
        if not match:
            continue
        options = dict(o.split("=", 1) for o in (match[2] or "").split() if "=" in o)
        yield {"types": match[1], "uris": match[3], "suites": match[4],
               "components": match[5], "signed-by": options.get("signed-by", "")}  # fmt: skip


def host_sources(codename: str, etc: Path = APT_ETC) -> list[Source]:
    """The host's enabled Debian entries for this release: main, security and updates."""
    stanzas: list[dict[str, str]] = []
    for path in [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        if path.name.endswith(".sources"):
            stanzas += parse_deb822(path.read_text())
        elif path.name.endswith(".list"):
            stanzas += parse_one_line(path.read_text())
    wanted = {codename, f"{codename}-updates", f"{codename}-security", f"{codename}/updates"}
    sources = []
    for stanza in stanzas:
        suites = tuple(s for s in stanza.get("suites", "").split() if s in wanted)
        if ("deb" not in stanza.get("types", "").split() or stanza.get("enabled") == "no"
                or "main" not in stanza.get("components", "").split() or not suites):  # fmt: skip
            continue
        sources.append(Source(tuple(stanza["uris"].split()), suites, stanza.get("signed-by", "")))
    if not sources:
        raise SystemExit(f"no enabled Debian '{codename}' source with 'main' in {etc}")
    return sources


def host_apt_options() -> list[str]:
    """The host's values of APT_OPTIONS, as `Name "value";` lines."""
    out = subprocess.run(["apt-config", "dump", *APT_OPTIONS], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return [line for line in out.splitlines() if line.split(" ", 1)[0] in APT_OPTIONS]


def mmdebstrap_command(
    codename: str, sources: list[Source], apt_options: list[str], out: Path
) -> list[str]:
    """One mmdebstrap run writing both root filesystems: out/build.tar and out/runtime.tar."""
    purge = " ".join(VENV_PACKAGES)
    # The hooks run with /proc, /sys and /dev mounted in the chroot: those stay out.
    skip = " ".join(f"--exclude=./{d}/*" for d in ("proc", "sys", "dev", "tmp"))
    tar = f'tar --numeric-owner --xattrs --one-file-system {skip} -C "$1" -cf {out / "build.tar"} .'
    return [
        "mmdebstrap", "--variant=essential", "--mode=root", "--format=tar", "--quiet",
        # Sets merged-/usr up itself; without it apt picks `usrmerge`, which drags in perl.
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={','.join((*RUNTIME_PACKAGES, 'python3-venv'))}",
        *(f"--aptopt={option}" for option in apt_options),
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        f"--customize-hook={CLEAN}",
        f"--customize-hook={tar}",
        f'--customize-hook=chroot "$1" dpkg --purge {purge}',
        codename, str(out / "runtime.tar"), *(line for s in sources for line in s.lines()),
    ]  # fmt: skip


def cache_key(codename: str, sources: list[Source], apt_options: list[str]) -> str:
    """What decides the root filesystems' contents: the whole command but its output folder."""
    command = mmdebstrap_command(codename, sources, apt_options, Path("OUT"))
    return hashlib.sha256("\0".join(command).encode()).hexdigest()[:12]
