"""KubeClient's impersonating clients: one per identity, kept and reused, bounded."""

from __future__ import annotations

from kubernetes import client as k8s

from deploybell.clients.kube import Discovery, KubeClient


def root() -> KubeClient:
    configuration = k8s.Configuration()
    configuration.host = "https://127.0.0.1:6443"  # never contacted: no request is made
    return KubeClient(k8s.ApiClient(configuration), Discovery())


def test_none_is_the_operator_itself() -> None:
    kube = root()
    assert kube.impersonating(None) is kube


def test_one_client_per_identity_reused() -> None:
    kube = root()
    a = kube.impersonating("system:serviceaccount:team-a:deployer")
    assert a.user == "system:serviceaccount:team-a:deployer"
    assert kube.impersonating("system:serviceaccount:team-a:deployer") is a
    b = kube.impersonating("system:serviceaccount:team-b:deployer")
    assert b is not a
    assert b.user == "system:serviceaccount:team-b:deployer"
    # An impersonating client asked for another identity hands out the same shared clients.
    assert b.impersonating("system:serviceaccount:team-a:deployer") is a


def test_identities_are_bounded_oldest_first() -> None:
    kube = root()
    first = kube.impersonating("user-0")
    second = kube.impersonating("user-1")
    for i in range(2, KubeClient.max_identities + 1):  # one more than the bound
        kube.impersonating(f"user-{i}")
    assert kube.impersonating("user-1") is second, "kept: within the bound"
    again = kube.impersonating("user-0")
    assert again is not first, "the oldest identity was dropped and is built afresh"
    assert again.user == "user-0"
