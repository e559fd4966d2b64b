"""`make deps` (hack/deps.py): what a user without root or apt-get is told, what the demo does
without ngircd, and that its list covers every server the test peers run."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support import programs
from tests.support.operator import ROOT
from tests.support.peers import inspircd, irc

sys.path.insert(0, str(ROOT / "hack"))
import deps


@pytest.fixture
def nothing_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing is installed but apt-get (a stub)."""
    (tmp_path / "apt-get").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(programs, "SYSTEM_DIRS", ())
    # python has its venv module; absolute paths (netavark's) are not there either.
    needs = [replace(n, check=lambda: True) if n.check else n for n in deps.NEEDS]
    monkeypatch.setattr(deps, "NEEDS", tuple(needs))
    found = programs.find_program
    monkeypatch.setattr(deps, "find_program", lambda n: None if n.startswith("/") else found(n))


@pytest.mark.usefixtures("nothing_installed")
def test_without_root_one_sentence_names_the_packages_and_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deps.os, "geteuid", lambda: 1000)
    assert deps.main(["deps", "test"]) == 2
    out, err = capsys.readouterr()
    names = "openssl ngircd inspircd atheme-services mmdebstrap podman runc netavark git"
    assert err.count("\n") == 1, err  # one sentence, no traceback
    assert f"`make test` needs {names}, missing here, and installing them needs root" in err
    assert f"`sudo apt-get install -y {names}`" in err
    assert "Traceback" not in out + err
    for package in names.split():  # and one line each on what it is for
        assert any(line.split()[0] == package and len(line) > 30 for line in out.splitlines())


@pytest.mark.usefixtures("nothing_installed")
def test_without_apt_get_the_sentence_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "apt-get").unlink()
    assert deps.main(["deps", "image"]) == 2
    err = capsys.readouterr().err
    assert "this machine has no apt-get" in err
    assert "apt-get install -y mmdebstrap podman runc netavark" in err
    assert "another distribution" in err


@pytest.mark.usefixtures("nothing_installed")
def test_the_demo_goes_on_without_ngircd_but_not_without_openssl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deps.os, "geteuid", lambda: 1000)
    assert deps.main(["deps", "demo"]) == 2  # openssl is missing too: the cluster needs it
    (tmp_path / "openssl").write_text("#!/bin/sh\n")
    (tmp_path / "openssl").chmod(0o755)
    capsys.readouterr()
    assert deps.main(["deps", "demo"]) == 0  # only ngircd: the demo leaves IRC out and says so
    assert "`make demo` needs ngircd" in capsys.readouterr().err


def test_every_server_a_test_peer_runs_is_in_the_list() -> None:
    listed = {p for n in deps.needs_for("test") for p in n.programs}
    assert {irc.NGIRCD, inspircd.INSPIRCD, inspircd.ATHEME} <= listed
    assert "podman" not in {p for n in deps.needs_for("demo") for p in n.programs}
