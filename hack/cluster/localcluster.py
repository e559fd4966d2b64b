"""A real, container-free Kubernetes control plane on 127.0.0.1, for tests and the demo.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes) run as plain
processes; certificates come from openssl. Usage:

    python hack/cluster/localcluster.py up          # start (or reuse) and print the kubeconfig
    python hack/cluster/localcluster.py down        # stop every process and forget the state
    python hack/cluster/localcluster.py status      # exit 0 when the API server is ready
    python hack/cluster/localcluster.py kubeconfig  # print the admin kubeconfig path
    python hack/cluster/localcluster.py restart kube-apiserver  # stop one component, start it

Each component's command line is kept in the state directory, so a test can stop one (say the
API server, while etcd keeps the data) and start it again exactly as it was.

Stdlib only, so it runs before the project's virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("DEPLOYBELL_CACHE", Path.home() / ".cache" / "deploybell"))
STATE = Path(os.environ.get("DEPLOYBELL_CLUSTER_DIR", CACHE / "cluster"))
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
SERVICE_CIDR = "10.96.0.0/16"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class ClusterError(RuntimeError):
    """The cluster could not be started; the message carries the failing component's log tail."""


@dataclass(frozen=True)
class Cluster:
    """Where a running local cluster lives."""

    state: Path

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def ports(self) -> dict[str, int]:
        return json.loads((self.state / "ports.json").read_text())

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def log(self, component: str) -> Path:
        return self.state / "logs" / f"{component}.log"


def say(message: str) -> None:
    print(f"==> [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bin_dir() -> Path:
    """Build the binaries when missing (cached per version) and return their directory."""
    out = subprocess.run(
        [str(HERE / "build.sh")], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- certificates -------------------------------------------------------------------------------


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(pki: Path) -> None:
    """A CA, the API server's serving cert, client certs and the service-account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    openssl("genrsa", "-out", "ca.key", "2048", cwd=pki)
    openssl(
        "req",
        "-x509",
        "-new",
        "-nodes",
        "-key",
        "ca.key",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        "/CN=deploybell-local-ca",
        "-out",
        "ca.crt",
        cwd=pki,
    )
    sans = "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
    sans += "DNS:kubernetes.default,DNS:kubernetes.default.svc"
    issue(pki, "apiserver", "/CN=kube-apiserver", sans, "serverAuth")
    issue(pki, "admin", "/O=system:masters/CN=deploybell-admin", None, "clientAuth")
    issue(pki, "controller-manager", "/CN=system:kube-controller-manager", None, "clientAuth")
    issue(pki, "scheduler", "/CN=system:kube-scheduler", None, "clientAuth")
    issue(pki, "kwok", "/O=system:masters/CN=kwok", None, "clientAuth")
    openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def issue(pki: Path, name: str, subject: str, sans: str | None, usage: str) -> None:
    openssl("genrsa", "-out", f"{name}.key", "2048", cwd=pki)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    ext = pki / f"{name}.ext"
    lines = ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature,keyEncipherment"]
    lines.append(f"extendedKeyUsage={usage}")
    if sans:
        lines.append(sans)
    ext.write_text("\n".join(lines) + "\n")
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "3650",
        "-sha256",
        "-extfile",
        ext.name,
        "-out",
        f"{name}.crt",
        cwd=pki,
    )


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    # JSON is valid YAML, so no YAML library is needed here.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "deploybell-local",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": str(pki / f"{user}.crt"),
                    "client-key": str(pki / f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "deploybell-local", "context": {"cluster": "deploybell-local", "user": user}}
        ],
        "current-context": "deploybell-local",
    }
    path.write_text(json.dumps(config, indent=2) + "\n")


# --- processes ----------------------------------------------------------------------------------


def start(cluster: Cluster, name: str, argv: list[str]) -> None:
    log = cluster.log(name).open("ab")
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=cluster.state,
    )
    (cluster.state / "pids").mkdir(exist_ok=True)
    (cluster.state / "pids" / name).write_text(str(proc.pid))
    (cluster.state / "argv").mkdir(exist_ok=True)
    (cluster.state / "argv" / f"{name}.json").write_text(json.dumps(argv))
    _started[(cluster.state, name)] = proc


def stop_component(cluster: Cluster, name: str, timeout: float = 15) -> bool:
    """SIGTERM the component's process group, SIGKILL it after `timeout`; False if not running."""
    pid = running_pid(cluster, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(cluster, name):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    proc = _started.pop((cluster.state, name), None)
    if proc is not None:
        proc.wait(timeout)
    # Not our child (started by an earlier process): init reaps it, which takes a moment.
    deadline = time.monotonic() + timeout
    while running_pid(cluster, name) and time.monotonic() < deadline:
        time.sleep(0.1)
    if running_pid(cluster, name):
        raise ClusterError(f"{name} (pid {pid}) is still running after SIGKILL")
    return True


def start_component(cluster: Cluster, name: str) -> None:
    """Start a stopped component again with the command line it had; wait until it serves."""
    if name not in COMPONENTS:
        raise ClusterError(f"no component {name!r}; the components are {', '.join(COMPONENTS)}")
    if running_pid(cluster, name):
        raise ClusterError(f"{name} is already running")
    saved = cluster.state / "argv" / f"{name}.json"
    if not saved.exists():
        raise ClusterError(f"no saved command line for {name}: restart the cluster (down, up)")
    start(cluster, name, json.loads(saved.read_text()))
    serving = {
        "kube-apiserver": lambda: https_ok(cluster, "/readyz"),
        "etcd": lambda: tcp_open(cluster.ports["etcd"]),
    }
    wait_until(cluster, f"{name} serving again", name, serving.get(name, lambda: True), 90)


# Processes started by this process: checked with poll(), since right after fork their
# /proc/<pid>/cmdline is still ours.
_started: dict[tuple[Path, str], subprocess.Popen[bytes]] = {}


def alive(cluster: Cluster, name: str) -> bool:
    proc = _started.get((cluster.state, name))
    if proc is not None:
        return proc.poll() is None
    return running_pid(cluster, name) is not None


def running_pid(cluster: Cluster, name: str) -> int | None:
    pidfile = cluster.state / "pids" / name
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    # A reused pid would belong to some other program; check the command line names ours.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if name.encode() in cmdline else None


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(cluster: Cluster, what: str, component: str, check, timeout: float) -> None:
    """Wait for check() to be true; fail with the component's log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not alive(cluster, component):
            raise ClusterError(
                f"{component} exited while waiting for {what}; last lines of "
                f"{cluster.log(component)}:\n{tail(cluster.log(component))}"
            )
        time.sleep(0.2)
    raise ClusterError(
        f"timed out after {timeout:.0f}s waiting for {what}; last lines of "
        f"{cluster.log(component)}:\n{tail(cluster.log(component))}"
    )


def https_ok(cluster: Cluster, path: str) -> bool:
    pki = cluster.state / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    try:
        url = f"{cluster.server}{path}"  # always https to our own loopback API server
        with urllib.request.urlopen(url, context=ctx, timeout=2) as r:  # noqa: S310
            return r.status == 200
    except OSError:
        return False


def tcp_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def kubectl(cluster: Cluster, bins: Path, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(bins / "kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


# --- the cluster --------------------------------------------------------------------------------


def is_up(cluster: Cluster) -> bool:
    if not (cluster.state / "ports.json").exists():
        return False
    # A cluster started without saved command lines (an older launcher) cannot restart a
    # component, so it does not count as up: `up` replaces it.
    saved = all((cluster.state / "argv" / f"{c}.json").exists() for c in COMPONENTS)
    return (
        saved and all(running_pid(cluster, c) for c in COMPONENTS) and https_ok(cluster, "/readyz")
    )


def up(state: Path | None = None) -> Cluster:
    """Start the cluster kept in `state` (default: $DEPLOYBELL_CLUSTER_DIR), or reuse it."""
    state = state or STATE
    cluster = Cluster(state)
    if is_up(cluster):
        say(f"local cluster already running at {cluster.server}")
        return cluster
    down(quiet=True, state=state)
    bins = bin_dir()
    began = time.monotonic()
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    pki = state / "pki"
    say("generating certificates")
    make_certs(pki)
    names = ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    (state / "ports.json").write_text(json.dumps(ports))
    write_kubeconfig(cluster.kubeconfig, cluster.server, pki, "admin")
    write_kubeconfig(
        state / "controller-manager.kubeconfig", cluster.server, pki, "controller-manager"
    )
    write_kubeconfig(state / "scheduler.kubeconfig", cluster.server, pki, "scheduler")
    write_kubeconfig(state / "kwok.kubeconfig", cluster.server, pki, "kwok")
    start_etcd(cluster, bins, ports)
    start_apiserver(cluster, bins, ports, pki)
    start_controllers(cluster, bins, ports, pki)
    start_kwok(cluster, bins, ports)
    create_nodes(cluster, bins)
    say(f"local cluster ready in {time.monotonic() - began:.1f}s at {cluster.server}")
    return cluster


def start_etcd(cluster: Cluster, bins: Path, ports: dict[str, int]) -> None:
    say("starting etcd")
    client = f"http://127.0.0.1:{ports['etcd']}"
    peer = f"http://127.0.0.1:{ports['etcd_peer']}"
    start(
        cluster,
        "etcd",
        [
            str(bins / "etcd"),
            "--name=deploybell",
            f"--data-dir={cluster.state / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=deploybell={peer}",
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ],
    )
    wait_until(cluster, "etcd", "etcd", lambda: tcp_open(ports["etcd"]), 30)


def start_apiserver(cluster: Cluster, bins: Path, ports: dict[str, int], pki: Path) -> None:
    say("starting kube-apiserver")
    start(
        cluster,
        "kube-apiserver",
        [
            str(bins / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--api-audiences=https://kubernetes.default.svc",
            "--allow-privileged=true",
            "--profiling=false",
            f"--audit-log-path={cluster.state / 'logs' / 'audit.log'}",
            f"--audit-policy-file={HERE / 'audit-policy.yaml'}",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
        ],
    )
    wait_until(
        cluster,
        "kube-apiserver /readyz",
        "kube-apiserver",
        lambda: https_ok(cluster, "/readyz"),
        90,
    )


def start_controllers(cluster: Cluster, bins: Path, ports: dict[str, int], pki: Path) -> None:
    say("starting kube-controller-manager and kube-scheduler")
    start(
        cluster,
        "kube-controller-manager",
        [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={cluster.state / 'controller-manager.kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller_manager']}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,-nodeipam",
            "--concurrent-deployment-syncs=10",
            "--concurrent-replicaset-syncs=10",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )
    start(
        cluster,
        "kube-scheduler",
        [
            str(bins / "kube-scheduler"),
            f"--kubeconfig={cluster.state / 'scheduler.kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
    )


def start_kwok(cluster: Cluster, bins: Path, ports: dict[str, int]) -> None:
    say("starting kwok")
    stages = sorted((HERE / "stages").glob("*.yaml"))
    start(
        cluster,
        "kwok",
        [
            str(bins / "kwok"),
            f"--kubeconfig={cluster.state / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--server-address=127.0.0.1:{ports['kwok']}",
            "--node-ip=10.244.0.1",
            "--cidr=10.244.0.0/16",
            *[f"--config={s}" for s in stages],
        ],
    )


def create_nodes(cluster: Cluster, bins: Path) -> None:
    say(f"creating fake nodes {', '.join(NODES)}")
    docs = []
    for node in NODES:
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node,
                    "annotations": {"kwok.x-k8s.io/node": "fake"},
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": node,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
                    "capacity": {"cpu": "32", "memory": "256Gi", "pods": "1000"},
                },
            }
        )
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    kubectl(cluster, bins, "apply", "-f", "-", stdin=manifest)

    def nodes_ready() -> bool:
        out = kubectl(
            cluster,
            bins,
            "get",
            "nodes",
            "-o",
            'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        )
        return out.split() == ["True"] * len(NODES)

    wait_until(cluster, "kwok nodes Ready", "kwok", nodes_ready, 60)
    # The namespace controller creates the default ServiceAccount; pods are refused without it.
    wait_until(
        cluster,
        "ServiceAccount default/default",
        "kube-controller-manager",
        lambda: (
            "default"
            in kubectl(
                cluster, bins, "get", "sa", "-n", "default", "-o", "name", "--ignore-not-found"
            )
        ),
        60,
    )


def down(quiet: bool = False, state: Path | None = None) -> None:
    state = state or STATE
    cluster = Cluster(state)
    for name in reversed(COMPONENTS):
        pid = running_pid(cluster, name)
        if pid is not None and not quiet:
            say(f"stopping {name} (pid {pid})")
        stop_component(cluster, name)
    if state.exists():
        shutil.rmtree(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status", "kubeconfig", "restart"))
    parser.add_argument("component", nargs="?", choices=COMPONENTS, help="for restart")
    args = parser.parse_args(argv)
    cluster = Cluster(STATE)
    if args.command == "up":
        try:
            cluster = up()
        except (ClusterError, subprocess.CalledProcessError) as e:
            print(f"local cluster failed to start: {e}", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={cluster.kubeconfig}")
    elif args.command == "down":
        down()
    elif args.command == "status":
        ok = is_up(cluster)
        print("running" if ok else "stopped")
        return 0 if ok else 1
    elif args.command == "restart":
        if args.component is None:
            parser.error("restart needs a component")
        try:
            stop_component(cluster, args.component)
            start_component(cluster, args.component)
        except ClusterError as e:
            print(f"{args.component} failed to restart: {e}", file=sys.stderr)
            return 1
        say(f"{args.component} restarted")
    else:
        print(cluster.kubeconfig)
    return 0


if __name__ == "__main__":
    sys.exit(main())
