"""`make image`'s base cache: a failed or cut mmdebstrap run never becomes a cache entry, a
poisoned entry (a 0-byte runtime.tar, a 1 kB imported base) is made again instead of used, the
mmdebstrap tar race is retried once, and a failure says how to clear the cache.

mmdebstrap and podman are replaced by recorders here (their real runs are tests/install); what is
tested is the cache logic of hack/image/build_image.py around them."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.operator import ROOT

sys.path.insert(0, str(ROOT / "hack" / "image"))
import build_image as image_build
import debian_base

RACE = "tar: ./sys: file changed as we read it\nE: hook failed"


def rootfs_tar(path: Path) -> None:
    """A small but whole root filesystem tar, with /usr/bin/sh as mmdebstrap's has."""
    with tarfile.open(path, "w") as tar:
        for name, data in (("./usr/bin/sh", b"\x7fELF"), ("./etc/os-release", b"ID=debian\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@dataclass
class Machine:
    """What mmdebstrap and podman did: each run's outcome is taken from `mmdebstrap_results`."""

    mmdebstrap_results: list[tuple[int, str]] = field(default_factory=list)
    empty_runtime: bool = False
    mmdebstrap_runs: int = 0
    imported: list[tuple[str, int, bool]] = field(default_factory=list)  # tar, size, whole?
    images: dict[str, int] = field(default_factory=dict)  # ref → size
    removed: list[str] = field(default_factory=list)

    def run(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert command[0] == "mmdebstrap", command
        self.mmdebstrap_runs += 1
        code, stderr = self.mmdebstrap_results.pop(0) if self.mmdebstrap_results else (0, "")
        out = Path(next(a for a in command if a.endswith("runtime.tar"))).parent
        rootfs_tar(out / "build.tar")  # the hook writes it before the final tar
        if code == 0:
            if self.empty_runtime:
                (out / "runtime.tar").write_bytes(b"")
            else:
                rootfs_tar(out / "runtime.tar")
        else:
            (out / "runtime.tar").write_bytes(b"")  # what the failed run left on the machine
        return subprocess.CompletedProcess(command, code, "", stderr)

    def podman(self, *args: str, check: bool = True, **_: Any) -> SimpleNamespace:
        if args[0] == "import":
            tar = Path(args[-2])
            size = tar.stat().st_size
            self.imported.append((tar.name, size, whole(tar)))
            self.images[args[-1]] = 200_000_000 if whole(tar) else size  # a real rootfs
        elif args[:2] == ("image", "inspect"):
            return SimpleNamespace(stdout=f"{self.images.get(args[-1], '')}\n", returncode=0)
        elif args[0] == "rmi":
            self.removed += [a for a in args[1:] if not a.startswith("-")]
            for ref in args[1:]:
                self.images.pop(ref, None)
        return SimpleNamespace(stdout="", stderr="", returncode=0)

    def image_id(self, ref: str) -> str | None:
        return "sha256:0123" if ref in self.images else None


def whole(tar: Path) -> bool:
    try:
        with tarfile.open(tar) as archive:
            return "./usr/bin/sh" in archive.getnames()
    except (tarfile.TarError, OSError):
        return False


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Machine:
    fake = Machine()
    source = debian_base.Source(("http://deb.debian.test/debian",), ("bookworm",))
    monkeypatch.setattr(image_build, "CACHE", tmp_path)
    monkeypatch.setattr(image_build, "subprocess", SimpleNamespace(run=fake.run))
    monkeypatch.setattr(image_build, "podman", fake.podman)
    monkeypatch.setattr(image_build, "image_id", fake.image_id)
    monkeypatch.setattr(debian_base, "host_codename", lambda: "bookworm")
    monkeypatch.setattr(debian_base, "host_sources", lambda codename: [source])
    monkeypatch.setattr(debian_base, "host_apt_options", lambda: [])
    return fake


def entry(tmp_path: Path) -> Path:
    key = debian_base.cache_key(
        "bookworm", [debian_base.Source(("http://deb.debian.test/debian",), ("bookworm",))], []
    )
    return tmp_path / f"debian-bookworm-{key}"


def test_a_zero_byte_runtime_tar_in_the_cache_is_made_again_not_imported(
    machine: Machine, tmp_path: Path
) -> None:
    poisoned = entry(tmp_path)
    poisoned.mkdir()
    rootfs_tar(poisoned / "build.tar")
    (poisoned / "runtime.tar").write_bytes(b"")  # what the failed first `make image` left
    image_build.debian_bases()
    assert machine.mmdebstrap_runs == 1
    assert [(name, ok) for name, _, ok in machine.imported] == [
        ("runtime.tar", True),
        ("build.tar", True),
    ]


def test_a_truncated_tar_in_the_cache_is_made_again(machine: Machine, tmp_path: Path) -> None:
    cut = entry(tmp_path)
    cut.mkdir()
    rootfs_tar(cut / "build.tar")
    rootfs_tar(cut / "runtime.tar")
    data = (cut / "runtime.tar").read_bytes()
    (cut / "runtime.tar").write_bytes(data[:700])
    image_build.debian_bases()
    assert machine.mmdebstrap_runs == 1
    assert all(ok for _, _, ok in machine.imported), machine.imported


def test_the_tar_race_is_retried_once_and_then_cached(machine: Machine, tmp_path: Path) -> None:
    machine.mmdebstrap_results = [(1, RACE), (0, "")]
    image_build.debian_bases()
    assert machine.mmdebstrap_runs == 2
    assert all(ok for _, _, ok in machine.imported)
    assert sorted(p.name for p in entry(tmp_path).iterdir()) == ["build.tar", "runtime.tar"]
    assert [p.name for p in tmp_path.iterdir()] == [entry(tmp_path).name]  # no partial left


def test_a_failed_build_caches_nothing_and_says_how_to_clear(
    machine: Machine, tmp_path: Path
) -> None:
    machine.mmdebstrap_results = [(1, RACE), (1, RACE)]
    with pytest.raises(SystemExit) as failed:
        image_build.debian_bases()
    assert machine.mmdebstrap_runs == 2  # retried once, not forever
    assert machine.imported == []
    assert list(tmp_path.iterdir()) == []
    message = str(failed.value)
    assert "file changed as we read it" in message
    assert f"rm -rf {tmp_path}" in message
    assert "podman rmi" in message


def test_an_empty_tar_from_a_successful_run_is_not_cached(machine: Machine, tmp_path: Path) -> None:
    machine.empty_runtime = True
    with pytest.raises(SystemExit) as failed:
        image_build.debian_bases()
    assert machine.imported == []
    assert list(tmp_path.iterdir()) == []
    assert "runtime.tar is missing or empty" in str(failed.value)
    assert f"rm -rf {tmp_path}" in str(failed.value)


def test_a_base_imported_from_an_empty_tar_is_removed_and_made_again(
    machine: Machine, tmp_path: Path
) -> None:
    key = entry(tmp_path).name.rsplit("-", 1)[1]
    runtime, build = f"localhost/deploybell-base:{key}", f"localhost/deploybell-build-base:{key}"
    machine.images = {runtime: 1024, build: 190_000_000}  # the 1 kB base of the failed run
    refs = image_build.debian_bases()
    assert refs == (runtime, build)
    assert runtime in machine.removed
    assert machine.images[runtime] >= image_build.MIN_BASE_BYTES
