"""OpenTelemetry: each run as one trace, exported with OTLP/HTTP (protobuf) to a collector.

The trace id and span ids are derived from the run (cluster, namespace, job, run number and start
time), never drawn at random: the start and the outcome, sent by different operator processes
if it restarted in between, land in the same trace, and a retried export repeats the same spans
(a backend keeps one per id). At start a `start` span marks the moment the run began (so the
trace shows while the run is in flight); at the outcome the run's root span (`deploy
<namespace>/<job>`, from start to end), its `Deploying` phase and a zero-length span for the
outcome (`Succeeded`, `Failed`, `Canceled`) follow, with `Verifying` from the time status
recorded for it (`status.verifyingAt`) when the run had a stability window. deploybell runs begin
in Deploying: there is no Pending wait to show.

Attributes follow the semantic conventions for deployments and VCS: the resource carries
`service.name=deploybell` and `deployment.environment.name`; the root span `deployment.name`,
`deployment.id`, `deployment.status` (`succeeded`, `failed`, or `canceled`),
`vcs.ref.head.revision`, `vcs.repository.url.full`, `k8s.namespace.name` and `k8s.cluster.name`.
The encoding is the SDK exporter's own (`opentelemetry-exporter-otlp-proto-common`); the request
goes through deploybell's HTTP session, which honours a 429's Retry-After and masks the URL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from deploybell.api.provider import ProviderRules, Recipients, SecretKey
from deploybell.notify.model import Message, clip
from deploybell.notify.providers import _http, base

CONTENT_TYPE = "application/x-protobuf"
VALUE_CHARS = 4000  # collectors cut attribute values at a configured length; stay readable
SCOPE = InstrumentationScope("deploybell")
STATUS = {"success": "succeeded", "failure": "failed", "cancel": "canceled"}
OUTCOME_SPANS = {"success": "Succeeded", "failure": "Failed", "cancel": "Canceled"}

RULES = ProviderRules(
    type="otel",
    title="OpenTelemetry",
    doc="Each run as one trace (OTLP/HTTP): a start span, then the run's span with its phases "
    "(Deploying, Verifying) and outcome; ids derived from the run, so a restarted operator "
    "continues the same trace.",
    recipients=Recipients(required=False, doc="the Secret's `url` is the collector"),
    secret_keys=(
        SecretKey(
            "url",
            "The OTLP/HTTP traces endpoint, e.g. `http://otel-collector.monitoring:4318/v1/traces`.",
        ),
        SecretKey("authorization", "Sent as the Authorization header (a vendor's ingest key)."),
    ),
    secret_needs=(frozenset({"url"}),),
    setup="Point `url` at an OpenTelemetry Collector's OTLP/HTTP receiver (`/v1/traces`, "
    "protobuf) or a vendor's OTLP endpoint, with its key as `authorization` if it needs one.",
)


@dataclass(frozen=True)
class SpanPlan:
    """One span to export, as plain values (what `deploybell render` shows)."""

    name: str
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: Mapping[str, str | int] = field(default_factory=dict)
    error: str | None = None  # the status description of a failed span
    notes: Mapping[str, str] = field(default_factory=dict)  # a `deploybell.notification` event


@dataclass(frozen=True)
class TracePlan:
    trace_id: int
    resource: Mapping[str, str]
    spans: tuple[SpanPlan, ...]


def plan(message: Message, override: base.Title | None) -> TracePlan:
    """The spans one message exports (pure, the same for every attempt and process)."""
    key = "|".join(
        (message.cluster, message.namespace, message.job, str(message.run), message.started_at)
    )
    started = _ns(message.started_at) or _ns(message.finished_at) or _ns_of(datetime.now(UTC))
    finished = _ns(message.finished_at) or started
    title, text = base.headline(message, override)
    notes = {"title": clip(title, VALUE_CHARS), "summary": clip(text, VALUE_CHARS)}
    root = _id(key, "run")
    resource = {"service.name": "deploybell"}
    if message.environment:
        resource["deployment.environment.name"] = message.environment
    if message.event == "start":
        start = _id(key, "start")
        span = SpanPlan("start", start, root, started, started, _run(message), None, notes)
        return TracePlan(_trace_id(key), resource, (span,))
    failed = (message.reason or "Failed") if message.event == "failure" else None
    attributes = {**_run(message), "deployment.status": STATUS.get(message.event, message.event)}
    spans = (
        SpanPlan(f"deploy {message.ref}", root, None, started, finished, attributes, failed),
        *_phases(message, key, root, started, finished),
        SpanPlan(
            OUTCOME_SPANS.get(message.event, message.event),
            _id(key, "outcome"),
            root,
            finished,
            finished,
            _phase(message),
            failed,
            notes,
        ),
    )
    return TracePlan(_trace_id(key), resource, spans)


def _phases(message: Message, key: str, root: int, started: int, finished: int) -> list[SpanPlan]:
    """Deploying from the start, and Verifying from when the stability window began."""
    verifying = _ns(message.verifying_at)
    if not started <= verifying <= finished:
        return [
            SpanPlan("Deploying", _id(key, "Deploying"), root, started, finished, _phase(message))
        ]
    return [
        SpanPlan("Deploying", _id(key, "Deploying"), root, started, verifying, _phase(message)),
        SpanPlan("Verifying", _id(key, "Verifying"), root, verifying, finished, _phase(message)),
    ]


def _run(message: Message) -> dict[str, str | int]:
    """The semantic-convention attributes of the run."""
    out: dict[str, str | int] = {
        "deployment.name": message.ref,
        "deployment.id": f"{message.ref}#{message.run}",
        "k8s.namespace.name": message.namespace,
        "deploybell.run": message.run,
        "deploybell.event": message.event,
    }
    if message.cluster:
        out["k8s.cluster.name"] = message.cluster
    if message.commit:
        out["vcs.ref.head.revision"] = message.commit
    if message.repository:
        out["vcs.repository.url.full"] = message.repository
    if message.revision:
        out["deploybell.revision"] = message.revision
    if message.reason:
        out["deploybell.reason"] = clip(message.reason, VALUE_CHARS)
    if message.message:
        out["deploybell.message"] = clip(message.message, VALUE_CHARS)
    return out


def _phase(message: Message) -> dict[str, str | int]:
    return {"deployment.name": message.ref, "deploybell.run": message.run}


def _trace_id(key: str) -> int:
    return int(hashlib.sha256(f"trace|{key}".encode()).hexdigest()[:32], 16) or 1


def _id(key: str, what: str) -> int:
    return int(hashlib.sha256(f"{what}|{key}".encode()).hexdigest()[:16], 16) or 1


def _ns(stamp: str) -> int:
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return _ns_of(when)


def _ns_of(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def spans(trace: TracePlan) -> list[ReadableSpan]:
    """The plan as the SDK's spans, for its OTLP encoder."""
    # Not Resource.create: its detectors add a random service.instance.id per process, and the
    # start and the outcome of a run must carry the same resource.
    resource = Resource(dict(trace.resource))
    out = []
    for span in trace.spans:
        context = SpanContext(trace.trace_id, span.span_id, False, TraceFlags(TraceFlags.SAMPLED))
        parent = (
            SpanContext(trace.trace_id, span.parent_id, False, TraceFlags(TraceFlags.SAMPLED))
            if span.parent_id is not None
            else None
        )
        status = Status(StatusCode.ERROR, span.error) if span.error else Status(StatusCode.OK)
        events = [Event("deploybell.notification", dict(span.notes), span.end_ns)]
        out.append(
            ReadableSpan(
                span.name,
                context=context,
                parent=parent,
                resource=resource,
                attributes=dict(span.attributes),
                events=events if span.notes else (),
                kind=SpanKind.INTERNAL,
                status=status,
                start_time=span.start_ns,
                end_time=span.end_ns,
                instrumentation_scope=SCOPE,
            )
        )
    return out


def body(message: Message, override: base.Title | None) -> bytes:
    """The ExportTraceServiceRequest, serialized."""
    return bytes(encode_spans(spans(plan(message, override))).SerializeToString())


class OtelProvider(_http.HttpProvider):
    """Exports each message's spans through the shared HTTP session."""

    rules = RULES

    async def deliver(self, out: _http.Outgoing) -> base.Sent:
        url = out.url("url")
        headers = {"Content-Type": CONTENT_TYPE}
        if authorization := out.destination.secret.get("authorization", "").strip():
            headers["Authorization"] = authorization
        data = body(out.message, out.override)
        reply = await out.request("POST", url, data=data, headers=headers)
        out.check(reply, context="trace export")
        rejected = _rejected(reply.body)
        if rejected:
            raise base.PermanentDeliveryError(base.mask(f"otel: {rejected}", out.secrets))
        count = len(plan(out.message, out.override).spans)
        return base.Sent(detail=f"exported {count} span(s)")


def _rejected(answer: str) -> str:
    """The collector's partial success: spans it refused, and why ("" when it took them all)."""
    try:
        parsed = ExportTraceServiceResponse.FromString(answer.encode("utf-8"))
    except Exception:
        return ""
    partial = parsed.partial_success
    if partial.rejected_spans:
        return f"the collector rejected {partial.rejected_spans} span(s): {partial.error_message}"
    return ""


def _render(preview: base.Preview) -> dict[str, Any]:
    trace = plan(preview.message, preview.override)
    return {
        "traceId": f"{trace.trace_id:032x}",
        "resource": dict(trace.resource),
        "spans": [
            {
                "name": s.name,
                "spanId": f"{s.span_id:016x}",
                "parentSpanId": f"{s.parent_id:016x}" if s.parent_id is not None else "",
                "start": s.start_ns,
                "end": s.end_ns,
                "attributes": dict(s.attributes),
                "status": f"ERROR: {s.error}" if s.error else "OK",
                **({"event": dict(s.notes)} if s.notes else {}),
            }
            for s in trace.spans
        ],
    }


def _preview(preview: base.Preview) -> list[str]:
    return [
        "POST <the Secret's url> (Content-Type: application/x-protobuf: an "
        "ExportTraceServiceRequest, shown here as JSON)",
        "",
        _http.indented(_render(preview)),
    ]


PROVIDER = base.ProviderType(OtelProvider, _render, _preview)
