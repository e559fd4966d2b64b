"""Where the real servers the peers run are found, and the error when one is not installed.

Standard library only: hack/deps.py imports it with the system's Python, before the virtualenv.
"""

from __future__ import annotations

import os
import shutil

# Debian puts the servers in sbin, which a normal user's PATH leaves out.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin")


class MissingProgram(RuntimeError):
    """A server a peer runs is not installed; the message says which package and how."""

    def __init__(self, program: str, package: str) -> None:
        self.program = program
        self.package = package
        super().__init__(
            f"{program} is not installed (Debian package {package}: `make deps` or "
            f"`sudo apt-get install {package}` installs it)"
        )


def find_program(name: str) -> str | None:
    """`name` on PATH, then in the system's bin and sbin folders; an absolute path as it is."""
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS]))


def require(name: str, package: str) -> str:
    """The path of `name`, or MissingProgram naming its package."""
    found = find_program(name)
    if found is None:
        raise MissingProgram(name, package)
    return found
