"""`deploybell validate`: offline checks of DeployJob and Notification files, for CI pipelines.

Each object is checked against its CRD's schema, then — when the structure is right — by the
operator's own parsers (what the CRDs' CEL rules and the operator check), its recipients and its
template. Hooks naming a Notification that none of the files define are warned about: it may well
exist in the cluster already.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import yaml

from deploybell.api.constants import GROUP, VERSION
from deploybell.api.deployjob import HOOK_FIELDS, parse_deployjob
from deploybell.api.errors import DNS_SUBDOMAIN, SpecError, shown
from deploybell.notify import providers
from deploybell.notify.template import TemplateError, compile_template, sample_failures
from deploybell.tools import schema
from deploybell.tools.documents import OUR_KINDS, Document, Finding, duplicate_keys, load

API_VERSION = f"{GROUP}/{VERSION}"


def validate_files(paths: Sequence[str]) -> tuple[list[Finding], int]:
    """Every finding, in file and line order, and how many of our objects were checked."""
    findings: list[Finding] = []
    documents: list[Document] = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            findings.append(Finding("error", path, 0, f"cannot read: {e}"))
            continue
        loaded, problems = load(path, text)
        findings.extend(problems)
        documents.extend(d for d in loaded if d.ours)
    clean = []
    for document in documents:
        problems = check_document(document)
        findings.extend(problems)
        if not any(p.severity == "error" for p in problems):
            clean.append(document)
    # Only valid objects are cross-checked: a warning about a name that is itself an error is noise.
    findings.extend(_cross_checks(clean))
    order = {path: i for i, path in enumerate(paths)}
    findings.sort(key=lambda f: (order.get(f.path, 0), f.line, f.severity, f.message))
    return findings, len(documents)


def check_document(document: Document) -> list[Finding]:
    """The findings about one deploybell object, alone."""
    problems = list(_header_problems(document))
    if problems:
        return problems
    for field, line, first in duplicate_keys(document):
        problems.append(_error(document, field, f"duplicate field (first at line {first})", line))
    structure = schema.problems(document.kind, document.body)
    for field, why in structure:
        problems.append(_error(document, field, _with_hint(field, why)))
    if structure:  # like the API server: semantic rules only run on a valid structure
        return problems
    spec = document.body.get("spec") or {}
    if document.kind == "DeployJob":
        problems.extend(_deployjob_problems(document, spec))
    else:
        problems.extend(_notification_problems(document, spec))
    return problems


def _header_problems(document: Document) -> Iterator[Finding]:
    if document.kind not in OUR_KINDS:
        kinds = " or ".join(OUR_KINDS)
        yield _error(document, "kind", f"must be {kinds} in {GROUP}, got {shown(document.kind)}")
        return
    if document.api_version != API_VERSION:
        yield _error(
            document, "apiVersion", f"must be {API_VERSION}, got {shown(document.api_version)}"
        )
    name = document.metadata.get("name")
    if not name:
        yield _error(document, "metadata.name", "is required")
    elif not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
        yield _error(
            document,
            "metadata.name",
            f"must be a DNS subdomain (at most 253 characters), got {shown(name)}",
        )


def _deployjob_problems(document: Document, spec: Mapping[str, Any]) -> Iterator[Finding]:
    try:
        parse_deployjob(spec)
    except SpecError as e:
        yield _error(document, e.field, e.message)


def _notification_problems(document: Document, spec: Mapping[str, Any]) -> Iterator[Finding]:
    # Every bad recipient at once (the parser stops at the first).
    recipient_lines = providers.recipient_errors(spec["type"], spec.get("recipients") or [])
    reported = set()
    for line in recipient_lines:
        field, _, why = line.partition(": ")
        reported.add(field)
        yield _error(document, field, why)
    try:
        providers.parse(spec)
    except SpecError as e:
        if e.field not in reported:
            yield _error(document, e.field, e.message)
    yield from _template_problems(document, spec.get("template"))


def _template_problems(document: Document, template: Any) -> Iterator[Finding]:
    if not template:
        return
    try:
        compiled = compile_template(template)
    except TemplateError as e:
        yield _template_error(document, str(e))
        return
    # One that compiles may still fail on every message (a misspelt name, say): the operator
    # shows the Notification not Ready for it, so it is an error here too, once per field.
    for failure in sample_failures(compiled):
        yield _error(document, f"spec.template.{failure.field}", failure.problem)


def _template_error(document: Document, text: str) -> Finding:
    """`spec.template.text: line 3: …` points at line 3 of a block scalar, not at its key."""
    field, _, why = text.partition(": ")
    line = document.line_of(field)
    node = document.node_at(field)
    head, _, _ = why.partition(": ")
    if (
        isinstance(node, yaml.ScalarNode)
        and node.style in ("|", ">")
        and head.startswith("line ")
        and head[5:].isdigit()
    ):
        line = node.start_mark.line + 1 + int(head[5:])
    return Finding("error", document.path, line, _text(document, field, why))


def _cross_checks(documents: Sequence[Document]) -> Iterator[Finding]:
    yield from _duplicates(documents)
    notifications = [d for d in documents if d.kind == "Notification"]
    for job in (d for d in documents if d.kind == "DeployJob"):
        yield from _undefined_notifications(job, notifications)


def _duplicates(documents: Iterable[Document]) -> Iterator[Finding]:
    first: dict[tuple[str, str, str], Document] = {}
    for document in documents:
        key = (document.kind, document.namespace, document.name)
        if not document.name:
            continue
        if key in first:
            where = f"{first[key].path}:{first[key].line}"
            yield _warning(
                document, "metadata.name", f"defined again (first at {where}); the last one wins"
            )
        else:
            first[key] = document


def _undefined_notifications(job: Document, notifications: Sequence[Document]) -> Iterator[Finding]:
    spec = job.body.get("spec")
    if not isinstance(spec, Mapping):
        return
    warned: set[str] = set()
    for hook in HOOK_FIELDS:
        entries = spec.get(hook)
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("notify") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or name in warned:
                continue
            if not any(_same_namespace(job, n) and n.name == name for n in notifications):
                warned.add(name)
                yield _warning(
                    job,
                    f"spec.{hook}[{i}].notify",
                    f"Notification {name} is not defined in the given files "
                    "(it must exist in the cluster)",
                )


def _same_namespace(job: Document, notification: Document) -> bool:
    """Files often leave the namespace to `kubectl -n`: an unset one matches any."""
    return (
        not job.namespace or not notification.namespace or job.namespace == notification.namespace
    )


def _with_hint(field: str, why: str) -> str:
    if field.startswith("spec.recipients[") and why.endswith("got null"):
        return f'{why} (an unquoted #channel starts a YAML comment: quote it, "#deploys")'
    return why


def _error(document: Document, field: str, why: str, line: int | None = None) -> Finding:
    where = document.line_of(field) if line is None else line
    return Finding("error", document.path, where, _text(document, field, why))


def _warning(document: Document, field: str, why: str) -> Finding:
    return Finding("warning", document.path, document.line_of(field), _text(document, field, why))


def _text(document: Document, field: str, why: str) -> str:
    """`DeployJob web: spec.x: why`; a reason that already names its field is not prefixed."""
    said = why if why.startswith(f"{field}.") else f"{field}: {why}"
    return f"{document.title}: {said}"
