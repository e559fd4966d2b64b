"""Optional title/text templates of a Notification: Jinja2's sandbox, compiled apart from sending.

Compile once (a template that does not compile makes the Notification not Ready, naming the line),
and render it against a sample message of every event (one that fails there, e.g. on an
undefined name or a blocked attribute, makes it not Ready too); render many; a render that fails
or runs away on a real message falls back to the default message.
"""

from __future__ import annotations

import functools
import math
import operator
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from deploybell.api.constants import EVENTS
from deploybell.notify.model import sample

MAX_OUTPUT = 4000  # characters of one rendered field
MAX_STEPS = 200_000  # executed template lines of one render (loops of loops included)
MAX_SEQUENCE = 100_000  # longest string/list/dict a template may build
MAX_INT_BITS = 4096  # largest integer a template may build
FIELDS = ("title", "text")


class TemplateError(ValueError):
    """A template that cannot be used; the message names the field and, when known, the line."""


class _Budget:
    def __init__(self) -> None:
        self.steps = 0

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateError(f"template ran more than {MAX_STEPS} steps")

    def tracer(self, frame: Any, event: str, arg: Any) -> Any:
        """A sys.settrace hook: every executed line of template code costs one step."""
        if event in ("call", "line"):
            self.tick()
        return self.tracer


def _bounded(value: Any) -> Any:
    """Refuse values that grow past the limits, whatever built them (ops, filters, methods)."""
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_SEQUENCE:
        raise TemplateError(f"template builds a value longer than {MAX_SEQUENCE}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateError("template builds a number that is too large")
    return value


class _Environment(SandboxedEnvironment):
    """The sandbox, plus size limits on everything a template computes."""

    intercepted_binops = frozenset({"*", "**", "+", "-", "//", "%"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if op == "**" and ints and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateError("template builds a number that is too large")
        if op == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | bytes | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_SEQUENCE:
                    raise TemplateError(f"template builds a value longer than {MAX_SEQUENCE}")
        return _bounded(_BINOPS[op](left, right))

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        return _bounded(super().call(__context, __obj, *args, **kwargs))


_BINOPS = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "-": operator.sub,
    "//": operator.floordiv,
    "%": operator.mod,
}


def _bounded_filter(fn: Any) -> Any:
    @functools.wraps(fn)  # keeps jinja's pass_context/pass_eval_context markers
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _bounded(fn(*args, **kwargs))

    return wrapper


def _bounded_join(seq: Any) -> str:
    """`~` concatenation (jinja's str_join), bounded."""
    return str(_bounded("".join(map(str, seq))))


def _environment(budget: _Budget) -> _Environment:
    env = _Environment(
        autoescape=False, trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined
    )
    env.filters = {name: _bounded_filter(fn) for name, fn in env.filters.items()}

    def bounded_range(*args: int) -> Iterator[int]:
        for value in range(*args):
            budget.tick()
            yield value

    env.globals["range"] = bounded_range
    return env


@dataclass(frozen=True)
class CompiledTemplate:
    """The sources, checked; rendering compiles again in a fresh, budgeted environment."""

    sources: Mapping[str, str]

    @property
    def empty(self) -> bool:
        return not self.sources


def compile_template(spec: Mapping[str, Any] | None) -> CompiledTemplate:
    """Check spec.template now, so a broken one is reported when it is applied."""
    sources: dict[str, str] = {}
    for field in FIELDS:
        source = (spec or {}).get(field)
        if source is None:
            continue
        if not isinstance(source, str):
            raise TemplateError(f"spec.template.{field}: must be a string")
        try:
            _environment(_Budget()).parse(source)
        except TemplateSyntaxError as e:
            raise TemplateError(f"spec.template.{field}: line {e.lineno}: {e.message}") from None
        sources[field] = source
    return CompiledTemplate(sources)


@dataclass(frozen=True)
class SampleFailure:
    """A field of a template that fails to render for the sample message of `event`."""

    field: str
    event: str
    why: str  # e.g. "UndefinedError: 'verb' is undefined"

    @property
    def problem(self) -> str:
        return f"fails to render for a sample {self.event} message ({self.why})"

    def __str__(self) -> str:
        return f"spec.template.{self.field}: {self.problem}"


def sample_failures(compiled: CompiledTemplate) -> tuple[SampleFailure, ...]:
    """For each field, the first event whose sample message it fails to render for.

    Used by the operator (Ready) and `deploybell validate` alike; kept per source, since the
    operator asks on every event of the Notification.
    """
    return _sample_failures(tuple(compiled.sources.items()))


@functools.lru_cache(maxsize=256)
def _sample_failures(sources: tuple[tuple[str, str], ...]) -> tuple[SampleFailure, ...]:
    failures = []
    for field, source in sources:
        for event in EVENTS:
            try:
                _render_field(field, source, sample(event).as_data())
            except TemplateError as e:
                failures.append(SampleFailure(field, event, str(e).partition(": ")[2]))
                break
    return tuple(failures)


def render(compiled: CompiledTemplate, context: Mapping[str, Any]) -> dict[str, str]:
    """Rendered fields (title/text); raises TemplateError, which callers turn into a fallback."""
    out: dict[str, str] = {}
    for field, source in compiled.sources.items():
        out[field] = _render_field(field, source, context)
    return out


def _render_field(field: str, source: str, context: Mapping[str, Any]) -> str:
    """One field, under a step budget enforced by tracing (loops over strings cost too)."""
    previous = sys.gettrace()
    budget = _Budget()
    sys.settrace(budget.tracer)
    try:
        return _generate(field, source, context, budget)
    finally:
        sys.settrace(previous)


def _generate(field: str, source: str, context: Mapping[str, Any], budget: _Budget) -> str:
    env = _environment(budget)
    pieces: list[str] = []
    size = 0
    try:
        template = env.from_string(source)
        # `~` compiles to a call of the module-level str_join: bound it too.
        template.root_render_func.__globals__["str_join"] = _bounded_join
        for piece in template.generate(**context):
            size += len(piece)
            if size > MAX_OUTPUT:
                raise TemplateError(f"spec.template.{field}: output over {MAX_OUTPUT} characters")
            pieces.append(piece)
    except TemplateError as e:
        raise (
            TemplateError(f"spec.template.{field}: {e}") if "spec.template" not in str(e) else e
        ) from None
    except Exception as e:  # any failure of user code means: use the default message
        raise TemplateError(f"spec.template.{field}: {type(e).__name__}: {e}") from None
    return "".join(pieces).strip()


def referenced_names(source: str) -> set[str]:
    """Top-level names a template reads (for `deploybell validate` warnings)."""
    tree = SandboxedEnvironment().parse(source)
    return {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
