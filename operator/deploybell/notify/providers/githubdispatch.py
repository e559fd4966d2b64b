"""GitHub repository_dispatch: each event of a run triggers the workflows of a repository that
listen `on: repository_dispatch` (`types: [<eventType>]`), with the run in `client_payload`
(`github.event.client_payload.event` is start, success, failure or cancel).

The repository is `githubdispatch.repository` or the path of the DeployJob's
`spec.source.repository`, found, addressed and authenticated as the `github` type does (the
shared forge pieces: token headers, GitHub Enterprise's `apiUrl`, rate limits ending at
`x-ratelimit-reset`); GitHub answers 204 without a body, so nothing is kept for later events.
A dispatch retried after a lost answer carries the same `client_payload.deploybell
.idempotency_key`, by which a workflow can drop the repeat.
"""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import Field, ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, _layout, base, github

MAX_EVENT_TYPE = 100  # GitHub: "must be 100 characters or fewer"
MAX_PAYLOAD_PROPERTIES = 10  # GitHub: at most 10 top-level properties in client_payload
MAX_SUMMARY = 1000
_REPOSITORY = next(f for f in github.RULES.options if f.name == "repository")

RULES = ProviderRules(
    type="githubdispatch",
    title="GitHub repository dispatch",
    doc="A repository_dispatch event per run event, carrying the run in client_payload, to "
    "trigger GitHub Actions workflows.",
    recipients=Recipients(
        required=False,
        doc="the repository comes from the DeployJob's `spec.source` or "
        "`githubdispatch.repository`",
    ),
    options=(
        _REPOSITORY,
        Field(
            "eventType",
            "string",
            "The dispatch's `event_type`, what a workflow's `on.repository_dispatch.types` "
            "lists (at most 100 characters).",
            default="deploybell",
            min_length=1,
            max_length=MAX_EVENT_TYPE,
            pattern=r"[A-Za-z0-9_.:/-]+",
            expected="letters, digits and _ . : / -",
        ),
    ),
    secret_keys=(
        SecretKey("token", "A fine-grained token (or GitHub App token) with Contents: write."),
        SecretKey("apiUrl", "GitHub Enterprise Server: `https://HOST/api/v3`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    setup="A fine-grained personal access token (or a GitHub App) for the repository with the "
    "repository permission **Contents: read and write** (a classic token needs `repo`). The "
    "workflow must be on the default branch. GitHub Enterprise Server: the Secret's `apiUrl`.",
)


class GithubdispatchProvider(github.GithubProvider):
    """GitHub's API as the `github` type reaches it; one dispatch per event instead of a
    deployment record (the forge's `record` is not used)."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            return await self._check(out, self._repository(out, None))
        repo = self._repository(out, out.message)
        body = _render(out)
        reply = await out.request("POST", self.url(repo, "dispatches"), json=body)
        self.answer(out, reply, repo.path)
        return base.Sent(detail=f"dispatched {body['event_type']} to {repo.path}")


# the request body (pure)


def payload(message: Message, override: base.Title | None, event_type: str) -> dict[str, Any]:
    """`event_type` and a `client_payload` of exactly ten top-level properties."""
    title, summary = base.headline(message, override)
    client = {
        "event": message.event,
        "title": title,
        "summary": clip(summary, MAX_SUMMARY),
        "namespace": message.namespace,
        "job": message.job,
        "run": message.run,
        "environment": message.environment,
        "commit": message.commit,
        "link": _layout.web_link(message.link),
        "deploybell": message.as_data(),
    }
    return {"event_type": event_type, "client_payload": client}


def _render(draft: base.Draft) -> dict[str, Any]:
    event_type = str(draft.options.get("eventType") or "deploybell")
    return payload(draft.message, draft.override, event_type)


def _preview(preview: base.Preview) -> list[str]:
    return ["POST /repos/{owner}/{repo}/dispatches", _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GithubdispatchProvider, _render, _preview)
