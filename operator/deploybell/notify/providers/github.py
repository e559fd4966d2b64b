"""GitHub: each run becomes a deployment of its commit to its environment (REST Deployments
API), whose status follows the run — `in_progress` at start, then `success`, `failure` or
`inactive` (canceled) — and, with `github.commitStatus`, a commit status
`deploybell/<namespace>/<job>` (`pending`, then `success`, `failure` or `error`).

The repository is `github.repository` or the path of the DeployJob's `spec.source.repository`;
the commit is `spec.source.revision` and the environment `spec.source.environment` (the namespace
by default). A DeployJob without them cannot be recorded: a permanent error names the field.
The deployment id is kept in the ledger (the start entry's refs); the run's identity is also in
the deployment's `payload`, so a deployment created just before a crash is found, not repeated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from yarl import URL

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _records
from deploybell.notify.providers.base import (
    Destination,
    PermanentDeliveryError,
    Preview,
    ProviderType,
    Sent,
    Title,
)

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
ACCEPT = "application/vnd.github+json"
# GitHub refuses a status description over 140 characters.
MAX_DESCRIPTION = 140
DEPLOYMENT_STATES = {
    "start": "in_progress",
    "success": "success",
    "failure": "failure",
    "cancel": "inactive",
}
COMMIT_STATES = {"start": "pending", "success": "success", "failure": "failure", "cancel": "error"}
_NAME = r"[A-Za-z0-9_.-]+"
_TOKEN = re.compile(r"[\x21-\x7e]+")

RULES = ProviderRules(
    type="github",
    title="GitHub",
    doc="A deployment of the run's commit to its environment, its status following the run "
    "(and optionally a commit status); the outcome updates the deployment made at start.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or `github.repository`",
    ),
    options=(
        Field(
            "repository",
            "string",
            "The repository as `owner/name`; default: the path of the DeployJob's "
            "`spec.source.repository`.",
            max_length=200,
            pattern=f"{_NAME}/{_NAME}",
            expected="owner/name",
        ),
        Field(
            "commitStatus",
            "boolean",
            "Also set a commit status `deploybell/<namespace>/<job>` on the commit: pending, then "
            "success, failure or error (canceled).",
            default=False,
        ),
        Field(
            "environmentUrl",
            "string",
            "The URL of the deployed environment, linked from the deployment.",
            max_length=2048,
            pattern=r"https?://\S+",
            expected="an http(s) URL",
        ),
    ),
    secret_keys=(
        SecretKey(
            "token", "A fine-grained token (or GitHub App token) that may write deployments."
        ),
        SecretKey("apiUrl", "GitHub Enterprise Server: `https://HOST/api/v3`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
)


class GithubProvider(_http.HttpProvider):
    """Creates the run's deployment at start and adds a status to it at every event."""

    kind = "github"

    async def send(
        self, message: Message, destination: Destination, override: Title | None = None
    ) -> Sent:
        if message.test:
            return await self._check(destination)
        sha = _records.commit(message, "github")  # first: without spec.source, say that
        api = _Api.of(destination, message)
        deployment = str(destination.previous.get("deployment") or "")
        if message.event == "start" or not deployment.isdigit():
            deployment = await self._find_or_create(api, message, sha)
        status = status_body(message, override, destination.options)
        reply = await self._http.post(
            api.url("deployments", deployment, "statuses"),
            api.secrets,
            headers=api.headers,
            json=status,
        )
        if reply.status == 404 and message.event != "start":
            # The deployment made at start is gone (deleted): record the run on a new one.
            deployment = await self._find_or_create(api, message, sha, look=False)
            reply = await self._http.post(
                api.url("deployments", deployment, "statuses"),
                api.secrets,
                headers=api.headers,
                json=status,
            )
        _answer(reply, api, f"deployment {deployment} of {api.repository}")
        detail = f"deployment {deployment} of {api.repository}: {status['state']}"
        if destination.options.get("commitStatus", False):
            body = commit_status_body(message, override)
            reply = await self._http.post(
                api.url("statuses", sha), api.secrets, headers=api.headers, json=body
            )
            _answer(reply, api, f"commit {sha[:12]} of {api.repository}")
            detail += f"; commit status {body['context']}: {body['state']}"
        return Sent(refs={"deployment": deployment, "repository": api.repository}, detail=detail)

    async def _check(self, destination: Destination) -> Sent:
        """`deploybell notify-test`: the token (and the `github.repository` it can read); a
        test records no deployment."""
        api = _Api.of(destination, None)
        if api.repository:
            reply = await self._http.request("GET", api.url(), api.secrets, headers=api.headers)
            _answer(reply, api, api.repository)
            return Sent(detail=f"the token can read {api.repository}; a test records nothing")
        reply = await self._http.request(
            "GET", api.root.joinpath("rate_limit"), api.secrets, headers=api.headers
        )
        _answer(reply, api, "the token")
        return Sent(
            detail="the token is valid; a test records nothing (with github.repository it "
            "also checks that repository)"
        )

    async def _find_or_create(
        self, api: _Api, message: Message, sha: str, look: bool = True
    ) -> str:
        """The id of this run's deployment: found by its payload, else created."""
        if look:
            query = {"sha": sha, "environment": message.environment, "per_page": "100"}
            reply = await self._http.request(
                "GET", api.url("deployments").with_query(query), api.secrets, headers=api.headers
            )
            _answer(reply, api, f"the deployments of {api.repository}")
            found = _same_run(reply.json(), _records.identity(message))
            if found:
                return found
        reply = await self._http.post(
            api.url("deployments"), api.secrets, headers=api.headers, json=deployment_body(message)
        )
        _answer(reply, api, f"{api.repository} at {sha[:12]}")
        created = reply.json()
        if reply.status != 201 or not isinstance(created, dict) or "id" not in created:
            # 202 is GitHub's answer when it merged the default branch instead (auto_merge).
            raise PermanentDeliveryError(
                f"github: no deployment created for {api.repository}: HTTP {reply.status}"
            )
        return str(created["id"])


class _Api:
    """The repository's API root, the request headers and the values to mask."""

    def __init__(self, root: URL, repository: str, token: str, secrets: list[str]) -> None:
        self.root = root
        self.repository = repository
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": ACCEPT,
            "X-GitHub-Api-Version": API_VERSION,
        }
        self.secrets = secrets

    @classmethod
    def of(cls, destination: Destination, message: Message | None) -> _Api:
        """The API for `message`'s repository (None: only the option's, "" without one)."""
        secret = destination.secret
        token = secret.get("token", "").strip()
        if not _TOKEN.fullmatch(token):
            raise PermanentDeliveryError("github: Secret key 'token' must be one word")
        api_url = secret.get("apiUrl", "").strip()
        root = _http.http_url(api_url or DEFAULT_API_URL, "github: Secret key 'apiUrl'")
        option = str(destination.options.get("repository") or "")
        if message is None:
            return cls(root, option, token, _http.secrets_of(secret))
        host, path = _records.repository(message, "github", "repository", option)
        if not re.fullmatch(f"{_NAME}/{_NAME}", path):
            raise PermanentDeliveryError(
                f"github: spec.source.repository of {message.ref} must name a repository as "
                f"owner/name, got {path!r}"
            )
        if host and not api_url and host not in ("github.com", "www.github.com"):
            raise PermanentDeliveryError(
                f"github: the repository is on {host}, not github.com: set the Secret's apiUrl "
                f"to the API of {host} (GitHub Enterprise Server serves it under /api/v3)"
            )
        return cls(root, path, token, _http.secrets_of(secret))

    def url(self, *segments: str) -> URL:
        owner, name = self.repository.split("/")
        return self.root.joinpath("repos", owner, name, *segments)


def _answer(reply: _http.Reply, api: _Api, context: str) -> Sent:
    """GitHub's classification: a 403 or 429 with `retry-after`, or with no requests left
    (`x-ratelimit-remaining: 0`), is a rate limit that ends at `x-ratelimit-reset`."""
    limited = reply.status in (403, 429) and (
        _http.header(reply.headers, "retry-after") is not None
        or _http.header(reply.headers, "x-ratelimit-remaining") == "0"
    )
    reset = _http.reset_delay(reply.headers, "x-ratelimit-reset", datetime.now(UTC))
    return _http.outcome(
        reply, "github", api.secrets, context=context, default_delay=reset, limited=limited
    )


def _same_run(listed: Any, wanted: Mapping[str, Any]) -> str:
    """The id of the listed deployment whose payload names this run, "" when none does."""
    for deployment in listed if isinstance(listed, list) else ():
        payload = deployment.get("payload") if isinstance(deployment, dict) else None
        if isinstance(payload, dict) and payload.get("deploybell") == dict(wanted):
            return str(deployment.get("id", ""))
    return ""


# request bodies (pure)


def deployment_body(message: Message) -> dict[str, Any]:
    """`POST /repos/{owner}/{repo}/deployments`: the commit, to the run's environment, with no
    merge and no required checks (the commit is deployed as it is)."""
    return {
        "ref": message.commit,
        "environment": message.environment,
        "auto_merge": False,
        "required_contexts": [],
        "description": clip(f"deploybell: {message.ref} run {message.run}", MAX_DESCRIPTION),
        "payload": {"deploybell": _records.identity(message)},
        "transient_environment": False,
    }


def status_body(
    message: Message, override: Title | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """`POST …/deployments/{id}/statuses`: the run's state, its one line and its links."""
    body: dict[str, Any] = {
        "state": DEPLOYMENT_STATES[message.event],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
        "environment": message.environment,
    }
    if log_url := _records.web_link(message.link):
        body["log_url"] = log_url
    if environment_url := str(options.get("environmentUrl") or ""):
        body["environment_url"] = environment_url
    return body


def commit_status_body(message: Message, override: Title | None) -> dict[str, Any]:
    """`POST /repos/{owner}/{repo}/statuses/{sha}`, one context per DeployJob."""
    body: dict[str, Any] = {
        "state": COMMIT_STATES[message.event],
        "description": _records.status_text(message, override, MAX_DESCRIPTION),
        "context": f"deploybell/{message.namespace}/{message.job}",
    }
    if target := _records.web_link(message.link):
        body["target_url"] = target
    return body


def _render(preview: Preview) -> dict[str, Any]:
    """The bodies of one event's requests, by request."""
    message, override, options = preview.message, preview.override, preview.options
    out: dict[str, Any] = {}
    if message.event == "start":
        out["deployment"] = deployment_body(message)
    out["status"] = status_body(message, override, options)
    if options.get("commitStatus", False):
        out["commitStatus"] = commit_status_body(message, override)
    return out


def _preview(preview: Preview) -> list[str]:
    bodies = _render(preview)
    lines = []
    if "deployment" in bodies:
        lines += ["POST /repos/{owner}/{repo}/deployments", _http.indented(bodies["deployment"])]
    else:
        lines.append(
            "to the deployment made at start (its id is kept in the ledger; without one, a "
            "deployment is created first, as at start)"
        )
    lines += [
        "POST /repos/{owner}/{repo}/deployments/{id}/statuses",
        _http.indented(bodies["status"]),
    ]
    if "commitStatus" in bodies:
        lines += [
            "POST /repos/{owner}/{repo}/statuses/{sha}",
            _http.indented(bodies["commitStatus"]),
        ]
    return lines


PROVIDER = ProviderType(
    rules=RULES,
    sender=GithubProvider,
    render=_render,
    preview=_preview,
    setup="A fine-grained personal access token (or a GitHub App) for the repository with the "
    "repository permissions **Deployments: read and write** and, for `commitStatus`, **Commit "
    "statuses: read and write** (Metadata: read is implied). A classic token needs "
    "`repo_deployment` (and `repo:status`). GitHub Enterprise Server: the Secret's `apiUrl`.",
)
