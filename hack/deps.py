"""`make deps`: the system packages a make goal needs, installed when missing (Debian, as root).

    python3 hack/deps.py demo      # what `make demo` needs; likewise test, image, reliability,
                                   # bench, fresh-check; `all` for every goal

Runs with the system's Python before the virtualenv exists (standard library only). A package
counts as present when the program the tests run is there, so a user of another distribution who
installed the same programs passes too. What is missing is installed with apt-get, one line each
saying what it is for; the packages' own services are kept from starting (the tests start their
own servers on free ports). Without root or apt-get it stops with one sentence naming the
packages and the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.programs import find_program  # noqa: E402  (standard library only)

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
GOALS = ("demo", "test", "image", "reliability", "bench", "fresh-check")


def python_has_venv() -> bool:
    """Debian's python3 lacks ensurepip until python3-venv is installed: `make venv` needs it."""
    python = os.environ.get("PYTHON", sys.executable)
    probe = [python, "-c", "import ensurepip, venv"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@dataclass(frozen=True)
class Need:
    """One package: the programs that show it is there, what it is for, which goals need it."""

    package: str
    why: str
    goals: tuple[str, ...]
    programs: tuple[str, ...] = ()
    service: str = ""  # the package's own daemon, kept stopped
    optional_for: tuple[str, ...] = ()  # goals that run without it (and say so)
    check: Callable[[], bool] | None = None

    def present(self) -> bool:
        if self.check is not None:
            return self.check()
        return any(find_program(p) for p in self.programs)


TESTS = ("test", "reliability")  # tests/reliability runs ngircd, not InspIRCd
CONTAINERS = ("test", "image", "fresh-check")
NEEDS = (
    Need("python3-venv", "for `make venv` (python3 -m venv)", GOALS, check=python_has_venv),
    Need(
        "openssl", "for the local cluster's certificates", ("demo", *TESTS, "bench"), ("openssl",)
    ),
    Need(
        "ngircd",
        "the IRC server of the demo's IRC sink and of the IRC tests",
        ("demo", *TESTS),
        ("ngircd",),
        service="ngircd",
        optional_for=("demo",),
    ),
    Need(
        "inspircd",
        "the IRC server with SASL of tests/providers/test_irc_sasl.py",
        ("test",),
        ("inspircd",),
        service="inspircd",
    ),
    Need(
        "atheme-services",
        "the services that answer InspIRCd's SASL logins (SASL tests)",
        ("test",),
        ("atheme-services",),
        service="atheme-services",
    ),
    Need(
        "mmdebstrap",
        "makes the Debian base of `make image` and of `make fresh-check`",
        CONTAINERS,
        ("mmdebstrap",),
    ),
    Need(
        "podman",
        "builds and runs the operator image (`make image`, tests/install/test_image.py)",
        CONTAINERS,
        ("podman",),
    ),
    Need(
        "runc",
        "the container runtime podman is told to use (crun refuses hybrid cgroups)",
        CONTAINERS,
        ("runc",),
    ),
    Need(
        "netavark",
        "podman's network backend",
        CONTAINERS,
        ("/usr/lib/podman/netavark", "/usr/libexec/podman/netavark"),
    ),
    Need(
        "git",
        "the gitea tests' real Gitea runs git; `make fresh-check` copies HEAD with git archive; "
        "bench's Flux lab serves git",
        ("test", "fresh-check", "bench"),
        ("git",),
    ),
)


def needs_for(goal: str) -> list[Need]:
    if goal == "all":
        return list(NEEDS)
    if goal not in GOALS:
        raise SystemExit(f"deps: unknown goal {goal!r}; one of: all, {', '.join(GOALS)}")
    return [n for n in NEEDS if goal in n.goals]


def step(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def refusal(goal: str, missing: list[Need], reason: str) -> str:
    """The one sentence a user who cannot install gets."""
    names = " ".join(n.package for n in missing)
    return (
        f"deps: `make {goal}` needs {names}, missing here, and {reason}: install them with "
        f"`sudo apt-get install -y {names}` (on another distribution, the same programs: "
        "README, Prerequisites, says what each is for)"
    )


def install(missing: list[Need]) -> None:
    """apt-get install, with the packages' services kept from starting (policy-rc.d 101)."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text(
            "#!/bin/sh\n# deploybell hack/deps.py: no service starts\nexit 101\n"
        )
        POLICY_RC_D.chmod(0o755)
    try:
        subprocess.run(["apt-get", *lock, "update", "-qq"], check=True, env=env)
        names = [n.package for n in missing]
        subprocess.run(["apt-get", *lock, "install", "-y", "-qq", *names], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    except subprocess.CalledProcessError as e:
        raise SystemExit(f"deps: {' '.join(map(str, e.cmd[:4]))} … exited {e.returncode} "
                         "(its output is above)") from None  # fmt: skip
    finally:
        if ours:
            POLICY_RC_D.unlink(missing_ok=True)
    # A policy-rc.d that was not ours may allow starts: stop what was just installed.
    for need in missing:
        if need.service and find_program("service"):
            subprocess.run(["service", need.service, "stop"], capture_output=True)


def main(argv: list[str]) -> int:
    goal = argv[1] if len(argv) > 1 else "all"
    needs = needs_for(goal)
    missing = [n for n in needs if not n.present()]
    if not missing:
        print(f"deps for {goal}: {' '.join(n.package for n in needs)} present", flush=True)
        return 0
    for need in missing:
        print(f"  {need.package:<16} {need.why}", flush=True)
    why_not = "" if find_program("apt-get") else "this machine has no apt-get"
    why_not = why_not or ("" if os.geteuid() == 0 else "installing them needs root")
    if why_not:
        print(refusal(goal, missing, why_not), file=sys.stderr)
        # The demo leaves out a sink whose server is missing, and says so; the rest runs.
        return 0 if all(goal in n.optional_for for n in missing) else 2
    started = time.monotonic()
    step(f"installing {len(missing)} package(s) for `make {goal}` with apt-get (services kept "
         "stopped)")  # fmt: skip
    install(missing)
    still = [n.package for n in missing if not n.present()]
    if still:
        print(f"deps: apt-get installed, yet {' '.join(still)} is still not found", file=sys.stderr)
        return 2
    step(f"installed {' '.join(n.package for n in missing)} in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
