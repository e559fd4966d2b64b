"""DeployJob spec: what to deploy, how long to wait for it, and whom to tell."""

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from deploybell.api.constants import EVENTS
from deploybell.api.errors import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    SpecError,
    as_mapping,
    check_str,
    get_bool,
    get_int,
    get_list,
    get_str,
    reject_unknown,
    shown,
)

# The hook fields in spec, in the order a reader meets them (Shippable's on_start ... always).
HOOK_FIELDS: Final[tuple[str, ...]] = ("onStart", "onSuccess", "onFailure", "onCancel", "always")

DEFAULT_MANIFESTS_KEY: Final = "manifests.yaml"
DEFAULT_KUBECONFIG_KEY: Final = "value"  # as Flux's spec.kubeConfig.secretRef.key

# Limits shared with crds/deploybell.io_deployjobs.yaml (maxItems there).
MAX_MANIFESTS: Final = 500
MAX_MANIFEST_SOURCES: Final = 20
MAX_HOOKS: Final = 20
# status.history: the CRD's maxItems, and the most the operator's --history-limit may keep.
MAX_HISTORY: Final = 100

_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# Context names as kubeconfigs have them (gke_project_zone_name, arn:aws:eks:...:cluster/x, a@b).
CLUSTER_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.:@/]*[A-Za-z0-9])?")
_SPEC_FIELDS = frozenset(
    {
        "manifests",
        "manifestsFrom",
        "targetNamespace",
        "serviceAccountName",
        "maxWaitSeconds",
        "stabilitySeconds",
        "prune",
        "rollbackOnFailure",
        "source",
        "cluster",
        *HOOK_FIELDS,
    }
)
_HTTPS_URL = re.compile(r"https://[^\s/]+(/\S*)?")
_LINK = re.compile(r"https?://\S+")
_HEX = re.compile(r"[0-9a-fA-F]{7,64}")
_ENVIRONMENT = re.compile(r"[^\x00-\x1f\x7f]+")
# The number of a GitHub or Gitea/Forgejo pull request or GitLab merge request link: the first
# `/pull/N`, `/pulls/N` or `/-/merge_requests/N` followed by `/`, `?`, `#` or the end (the CRD's
# CEL rule reads it the same way). None is a prefix of another (`/pull/` needs the `/` right
# after `pull`), and Bitbucket's `/pull-requests/N` and Azure's `/pullrequest/N` match none.
_CHANGE_NUMBER = re.compile(r"/(?:pulls?|-/merge_requests)/([0-9]+)(?:[/?#]|$)")
MAX_PULL_REQUEST = 2147483647
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class Source:
    """Where the manifests come from: the commit deployed, to which environment."""

    repository: str = ""
    revision: str = ""
    environment: str = ""  # "" means the DeployJob's namespace
    committed_at: str = ""
    url: str = ""
    pull_request: int = 0  # the PR/MR: spec.source.pullRequest, else from a /pull/N url; 0: none

    def resolved(self, namespace: str) -> "Source":
        """This source with its environment filled in by the one rule (`environment_of`)."""
        return Source(
            self.repository,
            self.revision,
            environment_of(self, namespace),
            self.committed_at,
            self.url,
            self.pull_request,
        )

    def as_status(self) -> dict[str, Any]:
        """The fields that are set, as status keeps a run's source (status.source, history)."""
        return {key: value for key, value in self.as_patch().items() if value}

    def as_patch(self) -> dict[str, Any]:
        """Every field for a merge patch: an unset one is removed (None), never left behind."""
        fields = zip(_SOURCE_KEYS, self._values(), strict=True)
        return {
            **{key: value or None for key, value in fields},
            "pullRequest": self.pull_request or None,
        }

    def _values(self) -> tuple[str, ...]:
        return (self.repository, self.revision, self.environment, self.committed_at, self.url)

    @classmethod
    def from_status(cls, raw: Any) -> "Source | None":
        """A run's source as status recorded it; None when none was recorded."""
        if not isinstance(raw, Mapping):
            return None
        number = raw.get("pullRequest")
        pull_request = number if isinstance(number, int) and not isinstance(number, bool) else 0
        repository, revision, environment, committed_at, url = (
            str(raw.get(key) or "") for key in _SOURCE_KEYS
        )
        return cls(repository, revision, environment, committed_at, url, pull_request)


# spec.source's string keys, in Source's field order (status uses the same names; pullRequest,
# an integer, follows them).
_SOURCE_KEYS: Final = ("repository", "revision", "environment", "committedAt", "url")


def environment_of(source: Source | None, namespace: str) -> str:
    """The environment a run deploys to: spec.source.environment, else the DeployJob's
    namespace. The one rule: messages, deployment records, status.history and DORA use it."""
    return (source.environment if source else "") or namespace


@dataclass(frozen=True)
class ConfigMapSource:
    """A ConfigMap key, in the DeployJob's namespace, holding multi-document YAML."""

    name: str
    key: str = DEFAULT_MANIFESTS_KEY


@dataclass(frozen=True)
class ClusterRef:
    """Another cluster to deploy into: a kubeconfig in a Secret of the DeployJob's namespace."""

    secret_name: str
    secret_key: str = DEFAULT_KUBECONFIG_KEY
    name: str = ""  # shown in messages; "" means the kubeconfig's current context


@dataclass(frozen=True)
class DeployJobSpec:
    """A parsed, validated DeployJob spec; defaults are filled in as the CRD would."""

    manifests: tuple[Mapping[str, Any], ...]
    manifests_from: tuple[ConfigMapSource, ...]
    target_namespace: str | None
    service_account_name: str | None
    max_wait_seconds: int = 600
    stability_seconds: int = 0
    prune: bool = False
    rollback_on_failure: bool = False
    on_start: tuple[str, ...] = ()
    on_success: tuple[str, ...] = ()
    on_failure: tuple[str, ...] = ()
    on_cancel: tuple[str, ...] = ()
    always: tuple[str, ...] = ()
    source: Source | None = None
    cluster: ClusterRef | None = None

    def subscribers(self, event: str) -> tuple[str, ...]:
        """Notification names due for `event`, in spec order, each once."""
        if event == "start":
            names = self.on_start
        elif event == "success":
            names = self.on_success + self.always
        elif event == "failure":
            names = self.on_failure + self.always
        elif event == "cancel":
            names = self.on_cancel + self.always
        else:
            raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
        return tuple(dict.fromkeys(names))


def parse_deployjob(spec: Mapping[str, Any]) -> DeployJobSpec:
    """Validate a DeployJob's spec as the CRD does (objects may predate it, or be offline)."""
    spec = as_mapping(spec, "spec")
    reject_unknown(spec, _SPEC_FIELDS, "spec")
    manifests = _parse_manifests(spec)
    manifests_from = _parse_sources(spec)
    if not manifests and not manifests_from:
        raise SpecError("spec", "spec.manifests or spec.manifestsFrom must have at least one entry")
    hooks = {field: _parse_hook(spec, field) for field in HOOK_FIELDS}
    return DeployJobSpec(
        manifests=manifests,
        manifests_from=manifests_from,
        target_namespace=get_str(
            spec,
            "targetNamespace",
            "spec",
            max_length=63,
            pattern=DNS_LABEL,
            expected="a DNS label",
        ),
        service_account_name=get_str(
            spec,
            "serviceAccountName",
            "spec",
            max_length=253,
            pattern=DNS_SUBDOMAIN,
            expected="a DNS subdomain",
        ),
        max_wait_seconds=get_int(
            spec, "maxWaitSeconds", "spec", default=600, minimum=1, maximum=3600
        ),
        stability_seconds=get_int(
            spec, "stabilitySeconds", "spec", default=0, minimum=0, maximum=300
        ),
        prune=get_bool(spec, "prune", "spec", default=False),
        rollback_on_failure=get_bool(spec, "rollbackOnFailure", "spec", default=False),
        on_start=hooks["onStart"],
        on_success=hooks["onSuccess"],
        on_failure=hooks["onFailure"],
        on_cancel=hooks["onCancel"],
        always=hooks["always"],
        source=_parse_source_block(spec),
        cluster=_parse_cluster(spec),
    )


def _parse_cluster(spec: Mapping[str, Any]) -> ClusterRef | None:
    if spec.get("cluster") is None:
        return None
    path = "spec.cluster"
    block = as_mapping(spec["cluster"], path)
    reject_unknown(block, {"name", "kubeConfig"}, path)
    if block.get("kubeConfig") is None:
        raise SpecError(f"{path}.kubeConfig", "is required")
    kube_config = as_mapping(block["kubeConfig"], f"{path}.kubeConfig")
    reject_unknown(kube_config, {"secretRef"}, f"{path}.kubeConfig")
    ref_path = f"{path}.kubeConfig.secretRef"
    if kube_config.get("secretRef") is None:
        raise SpecError(ref_path, "is required")
    ref = as_mapping(kube_config["secretRef"], ref_path)
    reject_unknown(ref, {"name", "key"}, ref_path)
    return ClusterRef(
        secret_name=check_str(
            ref.get("name"),
            f"{ref_path}.name",
            max_length=253,
            pattern=DNS_SUBDOMAIN,
            expected="a Secret name (DNS subdomain)",
        ),
        secret_key=get_str(
            ref,
            "key",
            ref_path,
            max_length=253,
            pattern=_CONFIGMAP_KEY,
            expected="a Secret key (letters, digits, '-', '_', '.')",
        )
        or DEFAULT_KUBECONFIG_KEY,
        name=get_str(
            block,
            "name",
            path,
            max_length=253,
            pattern=CLUSTER_NAME,
            expected="a cluster name (letters, digits, '-', '_', '.', ':', '@', '/')",
        )
        or "",
    )


def _parse_source_block(spec: Mapping[str, Any]) -> Source | None:
    if spec.get("source") is None:
        return None
    block = as_mapping(spec["source"], "spec.source")
    reject_unknown(block, {*_SOURCE_KEYS, "pullRequest"}, "spec.source")
    path = "spec.source"
    committed_at = get_str(block, "committedAt", path, max_length=64)
    if committed_at is not None and not _valid_time(committed_at):
        raise SpecError(
            f"{path}.committedAt", f"must be an RFC 3339 date-time, got {shown(committed_at)}"
        )
    url = (
        get_str(block, "url", path, max_length=2048, pattern=_LINK, expected="an http(s) URL") or ""
    )
    return Source(
        repository=get_str(
            block, "repository", path, max_length=2048, pattern=_HTTPS_URL, expected="an https URL"
        )
        or "",
        revision=get_str(
            block, "revision", path, max_length=64, pattern=_HEX, expected="a commit SHA in hex"
        )
        or "",
        environment=get_str(
            block,
            "environment",
            path,
            max_length=255,
            pattern=_ENVIRONMENT,
            expected="a name without control characters",
        )
        or "",
        committed_at=committed_at or "",
        url=url,
        pull_request=_pull_request(block, url, path),
    )


def pull_request_of(url: str) -> int:
    """The number of a GitHub `/pull/N`, Gitea `/pulls/N` or GitLab `/-/merge_requests/N` URL;
    0 for others."""
    found = _CHANGE_NUMBER.search(url)
    number = int(found.group(1)) if found else 0
    return number if number <= MAX_PULL_REQUEST else 0


def _pull_request(block: Mapping[str, Any], url: str, path: str) -> int:
    """spec.source.pullRequest, else the number in spec.source.url; the two must agree (the
    CRD's CEL rule says the same at admission)."""
    from_url = pull_request_of(url)
    if block.get("pullRequest") is None:
        return from_url
    number = get_int(block, "pullRequest", path, default=0, minimum=1, maximum=MAX_PULL_REQUEST)
    if from_url and from_url != number:
        raise SpecError(
            f"{path}.pullRequest",
            f"is {number} but spec.source.url names pull/merge request {from_url}",
        )
    return number


def _valid_time(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def _parse_manifests(spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    items = get_list(spec, "manifests", "spec", max_items=MAX_MANIFESTS)
    return tuple(_parse_manifest(item, f"spec.manifests[{i}]") for i, item in enumerate(items))


def _parse_manifest(item: object, path: str) -> Mapping[str, Any]:
    manifest = as_mapping(item, path)
    for key in ("apiVersion", "kind"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise SpecError(f"{path}.{key}", f"is required, got {shown(manifest.get(key))}")
    metadata = as_mapping(manifest.get("metadata"), f"{path}.metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        # Server-side apply needs a name; generateName cannot be applied twice.
        raise SpecError(f"{path}.metadata.name", f"is required, got {shown(name)}")
    return copy.deepcopy(dict(manifest))


def _parse_sources(spec: Mapping[str, Any]) -> tuple[ConfigMapSource, ...]:
    items = get_list(spec, "manifestsFrom", "spec", max_items=MAX_MANIFEST_SOURCES)
    return tuple(_parse_source(item, f"spec.manifestsFrom[{i}]") for i, item in enumerate(items))


def _parse_source(item: object, path: str) -> ConfigMapSource:
    source = as_mapping(item, path)
    reject_unknown(source, {"configMapRef"}, path)
    if source.get("configMapRef") is None:
        raise SpecError(f"{path}.configMapRef", "is required")
    ref_path = f"{path}.configMapRef"
    ref = as_mapping(source["configMapRef"], ref_path)
    reject_unknown(ref, {"name", "key"}, ref_path)
    name = check_str(
        ref.get("name"),
        f"{ref_path}.name",
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        expected="a ConfigMap name (DNS subdomain)",
    )
    key = get_str(
        ref,
        "key",
        ref_path,
        max_length=253,
        pattern=_CONFIGMAP_KEY,
        expected="a ConfigMap key (letters, digits, '-', '_', '.')",
    )
    return ConfigMapSource(name=name, key=key or DEFAULT_MANIFESTS_KEY)


def _parse_hook(spec: Mapping[str, Any], field: str) -> tuple[str, ...]:
    items = get_list(spec, field, "spec", max_items=MAX_HOOKS)
    names = []
    for i, item in enumerate(items):
        path = f"spec.{field}[{i}]"
        hook = as_mapping(item, path)
        reject_unknown(hook, {"notify"}, path)
        names.append(
            check_str(
                hook.get("notify"),
                f"{path}.notify",
                max_length=63,
                pattern=DNS_LABEL,
                expected="a Notification name (DNS label)",
            )
        )
    return tuple(names)
