"""The image's lock files match pyproject.toml: every required package is pinned, inside its range,
with hashes, and nothing is pinned that the ranges no longer ask for (`make lock` regenerates)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
BUILD_LOCK = ROOT / "requirements" / "build.lock"
# The lock is compiled for the image: Linux, CPython 3.11 (`make lock`).
IMAGE_MARKERS = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                 "platform_system": "Linux", "os_name": "posix"}  # fmt: skip
FROM_PYPROJECT = "deploybell (pyproject.toml)"
STALE = "the lock is stale: run `make lock`"


@dataclass
class Pin:
    version: Version
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def parse_lock(path: Path) -> dict[str, Pin]:
    """`name==version` entries with their `--hash` lines and `# via` annotations."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)(?: \\)?", line):
            current = pins[canonicalize_name(match[1])] = Pin(Version(match[2]))
        elif current and (match := re.fullmatch(r"\s+--hash=(sha256:[0-9a-f]{64})(?: \\)?", line)):
            current.hashes.append(match[1])
        elif current and (match := re.fullmatch(r"\s+#(?: via |   )\s*(\S.*)", line)):
            current.via.add(match[1].strip())
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
    return pins


def applicable(requirements: list[str]) -> list[Requirement]:
    parsed = [Requirement(text) for text in requirements]
    return [r for r in parsed if r.marker is None or r.marker.evaluate(IMAGE_MARKERS)]


def check_pinned(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """Each requirement is pinned, at a version inside its range."""
    problems = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{requirement} but the lock pins {pin.version}")
    return problems


def check_nothing_extra(requirements: list[Requirement], pins: dict[str, Pin]) -> list[str]:
    """Pinned for pyproject.toml only what it asks for; every other pin for a pinned package."""
    wanted = {canonicalize_name(r.name) for r in requirements}
    problems = []
    for name, pin in sorted(pins.items()):
        if FROM_PYPROJECT in pin.via and name not in wanted:
            problems.append(f"{name} is pinned for pyproject.toml, which no longer asks for it")
        parents = {v for v in pin.via if v != FROM_PYPROJECT}
        if not pin.via or not parents <= set(pins):
            problems.append(f"{name} is pinned for {sorted(parents - set(pins))}, not in the lock")
    return problems


def test_the_runtime_lock_matches_pyproject() -> None:
    pins = parse_lock(RUNTIME_LOCK)
    requirements = applicable(PYPROJECT["project"]["dependencies"])
    problems = check_pinned(requirements, pins) + check_nothing_extra(requirements, pins)
    assert not problems, f"{STALE}\n" + "\n".join(problems)


def test_the_build_lock_pins_the_build_system_inside_its_ranges() -> None:
    pins = parse_lock(BUILD_LOCK)
    problems = check_pinned(applicable(PYPROJECT["build-system"]["requires"]), pins)
    assert not problems, f"{STALE}\n" + "\n".join(problems)


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, BUILD_LOCK], ids=lambda p: p.name)
def test_every_pin_has_hashes(lock: Path) -> None:
    pins = parse_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    assert not [name for name, pin in pins.items() if not pin.hashes], "pins without --hash"


def test_dev_tools_are_not_in_the_runtime_lock() -> None:
    pins = parse_lock(RUNTIME_LOCK)
    dev = {canonicalize_name(Requirement(r).name)
           for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}  # fmt: skip
    assert not dev & set(pins), f"dev tools in the image's lock: {sorted(dev & set(pins))}"


def entry(name: str, version: str, *via: str) -> str:
    return f"{name}=={version} \\\n    --hash=sha256:{'0' * 64}\n" + "".join(
        f"    # via {v}\n" for v in via
    )


@pytest.mark.parametrize(
    ("lock_text", "problem"),
    [
        (entry("kopf", "1.44.0", FROM_PYPROJECT) + entry("pyyaml", "6.0.2", FROM_PYPROJECT),
         "kopf<2,>=1.45 but the lock pins 1.44.0"),
        (entry("kopf", "1.45.2", FROM_PYPROJECT), "pyyaml<7,>=6.0.2 is not in the lock"),
        # pyproject.toml dropped a package (kubernetes for an async client), the lock did not.
        (entry("kopf", "1.45.2", FROM_PYPROJECT) + entry("pyyaml", "6.0.2", FROM_PYPROJECT)
         + entry("kubernetes", "37.0.2", FROM_PYPROJECT),
         "kubernetes is pinned for pyproject.toml, which no longer asks for it"),
        (entry("kopf", "1.45.2", FROM_PYPROJECT) + entry("pyyaml", "6.0.2", FROM_PYPROJECT)
         + entry("urllib3", "2.8.0", "kubernetes"),
         "urllib3 is pinned for ['kubernetes'], not in the lock"),
    ],
)  # fmt: skip
def test_a_stale_lock_is_named(tmp_path: Path, lock_text: str, problem: str) -> None:
    lock = tmp_path / "runtime.lock"
    lock.write_text(lock_text)
    requirements = applicable(["kopf>=1.45,<2", "pyyaml>=6.0.2,<7"])
    pins = parse_lock(lock)
    assert problem in check_pinned(requirements, pins) + check_nothing_extra(requirements, pins)
