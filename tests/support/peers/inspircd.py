"""InspIRCd linked to Atheme services on 127.0.0.1 (both Debian's packages): an IRC network that
logs clients in with IRCv3 SASL PLAIN against accounts registered with NickServ, as networks
that run services do. ngircd has no SASL (its CAP LS offers only multi-prefix).

    with InspircdServer() as server:                   # .host .port .recipient(channel)
        server.register("bellbot", "s3cret")           # NickServ REGISTER, as a user would
        ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.peers.irc import HOST, IrcListener, _accepts, free_port
from tests.support.programs import require

INSPIRCD = "inspircd"
ATHEME = "atheme-services"
SERVER = "irc.sasl.test"
SERVICES = "services.sasl.test"


class InspircdServer:
    """InspIRCd (clients on `port`) with Atheme linked on a second port; SASL goes to Atheme."""

    def __init__(self) -> None:
        self.programs = require(INSPIRCD, "inspircd"), require(ATHEME, "atheme-services")
        self.host = HOST
        self.port = free_port()
        self.link_port = free_port()
        self.link_password = os.urandom(8).hex()
        self._dir = Path(tempfile.mkdtemp(prefix="inspircd-peer-"))
        # Both refuse to run as root; as `nobody` they must still reach their files.
        self._dir.chmod(0o777)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._write_config()

    def recipient(self, channel: str) -> str:
        return f"{self.host}:{self.port}{channel}"

    def start(self, timeout: float = 30.0) -> InspircdServer:
        self._spawn(
            "inspircd", [self.programs[0], "--nofork", f"--config={self._dir / 'inspircd.conf'}"]
        )
        self._wait(lambda: _accepts(self.port), "inspircd listening", timeout)
        atheme = self._dir / "atheme"
        self._spawn(
            "atheme",
            [self.programs[1], "-n", "-c", str(self._dir / "atheme.conf"),
             "-l", str(atheme) + ".log", "-p", str(atheme) + ".pid", "-D", str(self._dir)],
        )  # fmt: skip
        self._wait(lambda: "finished synching" in self.log("atheme"), "Atheme linked", timeout)
        return self

    def register(self, account: str, password: str, timeout: float = 30.0) -> None:
        """Register `account` with NickServ from a client using that nick, then leave."""
        with IrcListener(self.host, self.port, nick=account) as client:
            client.send_raw(f"PRIVMSG NickServ :REGISTER {password} {account}@deploybell.invalid")
            client.wait_for(lambda h: h.nick == "NickServ" and "registered" in h.text, timeout)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        self._procs = []

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> InspircdServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.cleanup()

    def log(self, name: str) -> str:
        path = self._dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, name: str, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        with (self._dir / f"{name}.out").open("ab") as out:
            self._procs.append(
                subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
            )

    def _wait(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for proc in self._procs:
                if proc.poll() is not None:
                    outputs = {p.name: p.read_text(errors="replace")[-2000:]
                               for p in self._dir.glob("*.out")}  # fmt: skip
                    self.stop()
                    raise RuntimeError(f"{proc.args[-1]} exited ({what}): {outputs}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"not {what} within {timeout}s: {self.log('atheme')[-2000:]}")
            time.sleep(0.05)

    def _write_config(self) -> None:
        d = self._dir
        (d / "inspircd.conf").write_text(
            f'<server name="{SERVER}" description="deploybell SASL test" network="DeployTest">\n'
            '<admin name="tests" nick="tests" email="tests@deploybell.invalid">\n'
            f'<bind address="{HOST}" port="{self.port}" type="clients">\n'
            f'<bind address="{HOST}" port="{self.link_port}" type="servers">\n'
            '<connect name="main" allow="*" timeout="60" pingfreq="120" sendq="262144" '
            'recvq="8192" threshold="0" commandrate="0" localmax="1000" globalmax="1000" '
            'useident="no" limit="5000">\n'
            f'<pid file="{d / "inspircd.pid"}">\n'
            f'<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" '
            f'target="{d / "inspircd.log"}">\n'
            '<dns timeout="1">\n'
            '<module name="cap">\n<module name="sasl">\n<module name="spanningtree">\n'
            '<module name="services_account">\n'
            f'<link name="{SERVICES}" ipaddr="{HOST}" port="{self.link_port}" '
            f'allowmask="127.0.0.0/8" sendpass="{self.link_password}" '
            f'recvpass="{self.link_password}">\n'
            f'<uline server="{SERVICES}" silent="yes">\n'
            f'<sasl target="{SERVICES}">\n'
        )
        modules = ["protocol/inspircd", "backend/opensex", "crypto/pbkdf2v2", "nickserv/main",
                   "nickserv/register", "saslserv/main", "saslserv/plain"]  # fmt: skip
        (d / "atheme.conf").write_text(
            "".join(f'loadmodule "modules/{m}";\n' for m in modules) + "serverinfo {\n"
            f'\tname = "{SERVICES}";\n\tdesc = "deploybell test services";\n'
            '\tnumeric = "00A";\n\trecontime = 1;\n\tnetname = "DeployTest";\n'
            '\thidehostsuffix = "users.test";\n\tadminname = "tests";\n'
            '\tadminemail = "tests@deploybell.invalid";\n'
            '\tregisteremail = "tests@deploybell.invalid";\n\tloglevel = { error; info; };\n'
            "\tmaxlogins = 5;\n\tmaxusers = 5;\n\tmdlimit = 30;\n\temaillimit = 10;\n"
            "\temailtime = 300;\n\tauth = none;\n\tcasemapping = rfc1459;\n};\n"
            f'uplink "{SERVER}" {{\n\thost = "{HOST}";\n\tport = {self.link_port};\n'
            f'\tsend_password = "{self.link_password}";\n'
            f'\treceive_password = "{self.link_password}";\n}};\n'
            f'nickserv {{\n\tnick = "NickServ";\n\tuser = "NickServ";\n\thost = "{SERVICES}";\n'
            '\treal = "Nickname Services";\n};\n'
            f'saslserv {{\n\tnick = "SaslServ";\n\tuser = "SaslServ";\n\thost = "{SERVICES}";\n'
            '\treal = "SASL Authentication Agent";\n};\n'
            "general {\n\tcommit_interval = 5;\n\tflood_msgs = 0;\n\tflood_time = 10;\n};\n"
        )
        for path in d.iterdir():
            path.chmod(0o644)
