"""GitHub check runs: one check run per run on the deployed commit, named
`deploybell/<namespace>/<job>`, created `in_progress` at start and completed with the outcome's
conclusion (`success`, `failure`, `cancelled`); its output is the run's title and Markdown
report, within GitHub's limits (a summary of at most 65535 characters, counted here in bytes as
GitHub does for multi-byte text).

Only GitHub Apps may write check runs: the token must be an installation access token of a
GitHub App with **Checks: read and write** (a personal access token gets 403 "You must
authenticate via a GitHub App."). The check run id is kept in the ledger; a check run created
just before a crash is found again by its `external_id` (a digest of the run's identity) among
the commit's check runs of that name, so a restart never creates a second one.
"""

from __future__ import annotations

from typing import Any

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _forge, _http, _layout, _markdown, _records, base, github

MAX_SUMMARY = 65535  # bytes of UTF-8 (GitHub's "characters")
MAX_TITLE = 255
MAX_NAME = 255
INSTALLATION_PREFIX = "ghs_"
CONCLUSIONS = {"success": "success", "failure": "failure", "cancel": "cancelled"}

RULES = ProviderRules(
    type="githubcheckrun",
    title="GitHub check run",
    doc="A check run per run on the deployed commit: in progress at start, completed with the "
    "outcome's conclusion (needs a GitHub App installation token).",
    recipients=Recipients(
        required=False,
        doc="the repository and commit come from the DeployJob's `spec.source`",
    ),
    options=(github.RULES.options[0],),  # repository
    secret_keys=(
        SecretKey(
            "token",
            "A GitHub App installation access token with Checks: read and write (only GitHub "
            "Apps may write check runs).",
        ),
        SecretKey("apiUrl", "GitHub Enterprise Server: `https://HOST/api/v3`.", sensitive=False),
    ),
    secret_needs=(frozenset({"token"}),),
    edits_in_place=True,
    setup="Only a **GitHub App** may create check runs: register an App with the repository "
    "permission **Checks: read and write**, install it on the repository and put an "
    "**installation access token** (`ghs_…`, `POST /app/installations/{id}/access_tokens`) in "
    "the Secret's `token`. Installation tokens expire after an hour, so a token refresher (e.g. "
    "a CronJob, or External Secrets' GitHub generator) must rewrite the Secret; deploybell reads "
    "the Secret at every send. Personal access tokens are refused by GitHub (403). GitHub "
    "Enterprise Server: the Secret's `apiUrl`.",
)


class GithubCheckRunProvider(github.GithubProvider):
    """Creates the run's check run at start and completes it at the outcome."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        if out.message.test:
            checked = await self._check(out, self._repository(out, None))
            if not out.word("token").startswith(INSTALLATION_PREFIX):
                # GitHub documents its token prefixes; only an App's may write check runs.
                raise base.PermanentDeliveryError(
                    "githubcheckrun: the token works but is no GitHub App installation token "
                    f"({INSTALLATION_PREFIX}…): GitHub refuses check runs from any other"
                )
            return checked
        sha = _records.commit(out.message, self.rules.type)
        repo = self._repository(out, out.message)
        body = check_run(out.message, out.override)
        check = str(out.previous.get("checkRun") or "") or await self._find(out, repo, sha)
        where = f"check run {body['name']} on {repo.path}@{sha[:12]}"
        if check:
            reply = await out.request("PATCH", self.url(repo, "check-runs", check), json=body)
            if reply.status != 404:
                self.answer(out, reply, where)
                return _sent(check, repo, f"{where}: {_state(body)}")
        body = {**body, "head_sha": sha}
        reply = await out.request("POST", self.url(repo, "check-runs"), json=body)
        self.answer(out, reply, where)
        created = reply.json()
        if not isinstance(created, dict) or "id" not in created:
            raise base.PermanentDeliveryError(f"{self.rules.type}: no check run id for {where}")
        return _sent(str(created["id"]), repo, f"{where}: {_state(body)}")

    async def _find(self, out: _http.Outgoing, repo: _forge.Repository, sha: str) -> str:
        """The id of this run's check run, created before a crash lost it ("" when none)."""
        query = {"check_name": name(out.message), "filter": "all", "per_page": "100"}
        url = self.url(repo, "commits", sha, "check-runs").with_query(query)
        reply = await out.request("GET", url)
        self.answer(out, reply, f"the check runs of {repo.path}@{sha[:12]}")
        listed = reply.json()
        runs = listed.get("check_runs") if isinstance(listed, dict) else None
        wanted = external_id(out.message)
        for run in runs if isinstance(runs, list) else ():
            if isinstance(run, dict) and run.get("external_id") == wanted:
                return str(run.get("id", ""))
        return ""


def _sent(check: str, repo: _forge.Repository, detail: str) -> base.Sent:
    return base.Sent(refs={"checkRun": check, "repository": repo.path}, detail=detail)


def _state(body: dict[str, Any]) -> str:
    return str(body.get("conclusion") or body["status"])


# request bodies (pure)


def name(message: Message) -> str:
    return clip(f"deploybell/{message.namespace}/{message.job}", MAX_NAME)


def external_id(message: Message) -> str:
    """The run's identity as GitHub keeps it on the check run (the comment marker's digest)."""
    return _markdown.marker(message).split()[-2]


def check_run(message: Message, override: base.Title | None) -> dict[str, Any]:
    """The body of `POST …/check-runs` (without `head_sha`) and of `PATCH …/check-runs/{id}`."""
    title, _ = base.headline(message, override)
    body: dict[str, Any] = {
        "name": name(message),
        "external_id": external_id(message),
        "output": {
            "title": clip(title, MAX_TITLE),
            "summary": _markdown.report(
                message, override, lambda text: len(text.encode()) <= MAX_SUMMARY
            ),
        },
    }
    if message.started_at:
        body["started_at"] = message.started_at
    if link := _layout.web_link(message.link):
        body["details_url"] = link
    if message.event == "start":
        body["status"] = "in_progress"
    else:
        body["status"] = "completed"
        body["conclusion"] = CONCLUSIONS[message.event]
        if message.finished_at:
            body["completed_at"] = message.finished_at
    return body


def _render(preview: base.Preview) -> dict[str, Any]:
    body = check_run(preview.message, preview.override)
    if preview.message.event == "start":
        body["head_sha"] = preview.message.commit
    return body


def _preview(preview: base.Preview) -> list[str]:
    if preview.message.event == "start":
        how = "POST /repos/{owner}/{repo}/check-runs"
    else:
        how = (
            "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id} (the check run created at "
            "start, its id kept in the ledger; without one, it is created completed)"
        )
    return [how, _http.indented(_render(preview))]


PROVIDER = base.ProviderType(GithubCheckRunProvider, _render, _preview)
