"""A local OTLP/HTTP traces receiver (`POST /v1/traces`), decoding the protobuf with the official
`opentelemetry-proto` package, as a Collector's `otlp` receiver does. Point a Secret's `url` at
`peer.url`.

What it enforces, from the OTLP specification (OTLP/HTTP):
- `Content-Type: application/x-protobuf` (JSON is the other encoding; deploybell sends protobuf),
  else 415; a body that does not decode as an `ExportTraceServiceRequest` 400;
- with `authorization` set (a vendor's ingest key, or a Collector's `bearertokenauth`): that
  exact `Authorization` header, else 401;
- each span: a 16-byte trace id and an 8-byte span id, neither all zero; a name; an end not
  before its start. Spans that break these are rejected through `partial_success`
  (`rejected_spans`, `error_message`), the request answered 200 as OTLP says;
- success: 200 with an empty `ExportTraceServiceResponse` (protobuf);
- throttling: 429 with `Retry-After` (seconds), which OTLP clients must honour.
Spans are kept by (trace id, span id): an exporter's retry of the same span replaces it, as a
tracing backend stores one span per id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.peers._http import HttpPeer
from tests.support.peers.contract import PeerContract

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    events: list[tuple[str, dict[str, Any]]]


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(request: ExportTraceServiceRequest) -> tuple[list[ReceivedSpan], list[str]]:
    """The spans of a request, and why any of them is rejected."""
    spans, problems = [], []
    for resource_spans in request.resource_spans:
        resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problem = span_problem(span.trace_id, span.span_id, span.name, span)
                if problem:
                    problems.append(problem)
                    continue
                spans.append(
                    ReceivedSpan(
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.name,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        {a.key: value(a.value) for a in span.attributes},
                        resource,
                        span.status.code,
                        span.status.message,
                        [
                            (e.name, {a.key: value(a.value) for a in e.attributes})
                            for e in span.events
                        ],
                    )
                )
    return spans, problems


def span_problem(trace_id: bytes, span_id: bytes, name: str, span: Any) -> str:
    if len(trace_id) != 16 or not any(trace_id):
        return f"span {name!r}: invalid trace id"
    if len(span_id) != 8 or not any(span_id):
        return f"span {name!r}: invalid span id"
    if not name:
        return "a span without a name"
    if span.end_time_unix_nano < span.start_time_unix_nano:
        return f"span {name!r} ends before it starts"
    return ""


class OtlpPeer(HttpPeer[ReceivedSpan]):
    """Keeps every span received, by (trace id, span id)."""

    def __init__(self, authorization: str = "", host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.authorization = authorization
        self.rejected: list[str] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1/traces"

    def spans(self) -> list[ReceivedSpan]:
        """One per (trace id, span id), the latest received, in the order first received."""
        latest: dict[tuple[str, str], ReceivedSpan] = {}
        for span in self.received:
            latest[(span.trace_id, span.span_id)] = span
        return list(latest.values())

    def app(self) -> web.Application:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        scripted = self._scripted()
        if scripted is not None:
            return scripted.text_response()
        if self.authorization and request.headers.get("Authorization") != self.authorization:
            return web.Response(status=401, text="unauthorized")
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"unsupported content type {request.content_type}")
        try:
            export = ExportTraceServiceRequest.FromString(await request.read())
        except DecodeError:
            return web.Response(status=400, text="the body is not an ExportTraceServiceRequest")
        spans, problems = decode(export)
        for span in spans:
            self._record(span)
        answer = ExportTraceServiceResponse()
        if problems:
            self.rejected += problems
            answer.partial_success.rejected_spans = len(problems)
            answer.partial_success.error_message = "; ".join(problems)
        return web.Response(body=answer.SerializeToString(), content_type=PROTOBUF)


class OtelContract(PeerContract[OtlpPeer]):
    """The traces as a tracing UI lists a run: each span's notification event (title, summary)."""

    limits_size = False  # OTLP bounds requests by bytes (a Collector's default is 20 MiB)

    def __init__(self) -> None:
        super().__init__(OtlpPeer(authorization="Bearer otlp-ingest-key"))

    def secret(self) -> dict[str, str]:
        return {"url": self.peer.url, "authorization": self.peer.authorization}

    def visible(self) -> list[str]:
        return [
            f"{attributes.get('title', '')} {attributes.get('summary', '')}"
            for span in self.peer.spans()
            for name, attributes in span.events
            if name == "deploybell.notification"
        ]

    def rate_limit_next(self, seconds: int) -> None:
        self.peer.respond_next(1, 429, retry_after=str(seconds))

    def problems(self, rendered: Any) -> list[str]:
        out = []
        for span in rendered["spans"]:
            if span["end"] < span["start"]:
                out.append(f"span {span['name']} ends before it starts")
            if not span["name"]:
                out.append("a span without a name")
        return out
