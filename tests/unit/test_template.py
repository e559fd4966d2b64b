"""Notification templates: compile errors, rendering, runaway limits and the sandbox."""

import time
from typing import Any

import pytest

from deploybell.notify.model import sample
from deploybell.notify.template import (
    MAX_OUTPUT,
    CompiledTemplate,
    TemplateError,
    compile_template,
    referenced_names,
    render,
)

CONTEXT = sample("failure").as_data()
# Generous: the limits stop these in well under a tenth of a second.
RUNAWAY_SECONDS = 2.0


def render_text(source: str, context: dict[str, Any] | None = None) -> str:
    return render(compile_template({"text": source}), CONTEXT if context is None else context)[
        "text"
    ]


# --- compile_template -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        pytest.param({"text": "{{ job"}, "spec.template.text: line 1: ", id="unclosed-print"),
        pytest.param(
            {"title": "fine", "text": "deploy of {{ job }}\n{% if %}done{% endif %}"},
            "spec.template.text: line 2: ",
            id="empty-if-on-line-2",
        ),
        pytest.param(
            {"title": "a\nb\n{% endfor %}"},
            "spec.template.title: line 3: ",
            id="stray-endfor-in-title-line-3",
        ),
        pytest.param(
            {"title": "{% for p in pods %}", "text": "{{ job"},
            "spec.template.title: line 1: ",
            id="title-checked-first",
        ),
    ],
)
def test_compile_error_names_field_and_line(spec: dict[str, Any], prefix: str) -> None:
    with pytest.raises(TemplateError) as caught:
        compile_template(spec)
    message = str(caught.value)
    assert message.startswith(prefix), message
    assert len(message) > len(prefix), "the parser's reason follows the line"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param({"title": 5}, "spec.template.title: must be a string", id="int-title"),
        pytest.param({"text": ["a"]}, "spec.template.text: must be a string", id="list-text"),
        pytest.param({"text": {"x": 1}}, "spec.template.text: must be a string", id="mapping-text"),
    ],
)
def test_compile_rejects_non_string_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=f"^{message}$"):
        compile_template(spec)


@pytest.mark.parametrize(
    ("spec", "sources"),
    [
        pytest.param(None, {}, id="no-template"),
        pytest.param({}, {}, id="empty-template"),
        pytest.param({"title": None, "text": None}, {}, id="null-fields-skipped"),
        pytest.param({"text": "{{ job }}"}, {"text": "{{ job }}"}, id="text-only"),
        pytest.param(
            {"title": "T", "text": "X", "other": "{{ ignored"},
            {"title": "T", "text": "X"},
            id="only-title-and-text",
        ),
    ],
)
def test_compile_keeps_sources(spec: dict[str, Any] | None, sources: dict[str, str]) -> None:
    compiled = compile_template(spec)
    assert dict(compiled.sources) == sources
    assert compiled.empty is (not sources)


# --- render -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("{{ job }}", "web", id="plain-field"),
        pytest.param("{{ namespace }}/{{ job }} run {{ run }}", "team-a/web run 3", id="fields"),
        pytest.param("{{ title }}", "✖ team-a/web failed on prod-eu (run 3)", id="title"),
        pytest.param(
            "{{ summary }}",
            "CrashLoopBackOff after 1m05s: pod web-7d9f8-x2kqp container app is in "
            "CrashLoopBackOff (exit code 1, 5 restarts)",
            id="summary",
        ),
        pytest.param(
            "{% for p in pods %}{{ p.pod }}/{{ p.container }}: {{ p.reason }}{% endfor %}",
            "web-7d9f8-x2kqp/app: CrashLoopBackOff",
            id="loop-over-pods",
        ),
        pytest.param("{{ images | join(', ') }}", "registry.example/web:1.4.3", id="filter"),
        pytest.param(
            "{% if event == 'failure' %}FAILED {{ objects[0].kind }}{% endif %}",
            "FAILED Deployment",
            id="condition",
        ),
        pytest.param("  {{ job }}  \n\n", "web", id="stripped"),
        pytest.param("{{ warnings[0].count * 2 }}", "14", id="number-times-number"),
        pytest.param("{{ 2 ** 10 }}", "1024", id="small-power"),
        pytest.param("{{ '-' * 10 }}", "----------", id="short-repeat"),
        pytest.param("{{ duration_seconds | int }}s", "65s", id="duration"),
    ],
)
def test_render_with_message_context(source: str, expected: str) -> None:
    assert render_text(source) == expected


def test_render_both_fields() -> None:
    compiled = compile_template({"title": "{{ symbol }} {{ job }}", "text": "run {{ run }}"})
    context = {**CONTEXT, "symbol": "!"}
    assert render(compiled, context) == {"title": "! web", "text": "run 3"}


def test_render_nothing_for_an_empty_template() -> None:
    assert render(CompiledTemplate({}), CONTEXT) == {}


def test_output_just_under_the_limit_is_kept() -> None:
    assert render_text("{% for i in range(1000) %}abcd{% endfor %}") == "abcd" * 1000
    assert len("abcd" * 1000) == MAX_OUTPUT


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        pytest.param(
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "steps",
            id="nested-range-loops",
        ),
        pytest.param(
            "{% set s = 'abcdefghij' * 1000 %}"
            "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
            "steps",
            id="nested-loops-over-a-long-string",
        ),
        pytest.param(
            "{% for a in summary %}{% for b in summary %}{% for c in summary %}"
            "{% endfor %}{% endfor %}{% endfor %}",
            "steps",
            id="triple-loop-over-a-context-string",
        ),
        pytest.param("{{ 'x' * 1000000 }}", "longer than", id="string-times-big"),
        pytest.param("{{ 1000000 * 'x' }}", "longer than", id="big-times-string"),
        pytest.param("{{ [0] * 100001 }}", "longer than", id="list-times-big"),
        pytest.param("{{ 9 ** 9999 }}", "too large", id="big-exponent"),
        pytest.param("{{ 'x' * 5000 }}", f"output over {MAX_OUTPUT}", id="output-over-limit"),
        pytest.param(
            "{% for i in range(100000) %}x{% endfor %}",
            f"output over {MAX_OUTPUT}",
            id="loop-output-over-limit",
        ),
    ],
)
def test_runaway_templates_stop_quickly(source: str, needle: str) -> None:
    began = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        render_text(source)
    elapsed = time.monotonic() - began
    assert elapsed < RUNAWAY_SECONDS, f"took {elapsed:.2f}s"
    assert str(caught.value).startswith("spec.template.text: "), caught.value
    assert needle in str(caught.value)


def test_chained_powers_are_bounded() -> None:
    with pytest.raises(TemplateError):
        render_text("{% set n = (((10 ** 64) ** 64) ** 64) ** 4 %}{{ n > 1 }}")


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "{% set s = 'x' * 10000 %}" + "{% set s = s ~ s %}" * 10 + "{{ s | length }}",
            id="doubling-by-tilde",
        ),
        pytest.param(
            "{% set s = 'x' * 10000 %}" + "{% set s = s + s %}" * 10 + "{{ s | length }}",
            id="doubling-by-plus",
        ),
        pytest.param("{{ ('x' | center(10000000)) | length }}", id="center-filter"),
    ],
)
def test_huge_intermediate_strings_are_bounded(source: str) -> None:
    with pytest.raises(TemplateError):
        render_text(source)


def test_budget_is_per_render() -> None:
    """A template just under the budget renders again and again: steps do not accumulate."""
    # About a quarter of the step budget each: five renders would exceed one shared budget.
    compiled = compile_template({"text": "{% for i in range(5000) %}{% endfor %}ok"})
    for _ in range(5):
        assert render(compiled, CONTEXT) == {"text": "ok"}


BLOCKED = "spec.template.text: SecurityError: access to attribute"


@pytest.mark.parametrize(
    ("source", "error"),
    [
        pytest.param("{{ ().__class__.__mro__ }}", BLOCKED, id="tuple-mro"),
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", BLOCKED, id="subclasses"),
        pytest.param("{{ cycler.__init__.__globals__ }}", BLOCKED, id="cycler-globals"),
        pytest.param("{{ joiner.__init__.__globals__.os }}", BLOCKED, id="joiner-os"),
        pytest.param("{{ self.__init__.__globals__ }}", BLOCKED, id="self-globals"),
        pytest.param("{{ namespace.__init__.__globals__ }}", BLOCKED, id="context-str-init"),
        pytest.param("{{ ''.__class__ }}", "", id="str-class"),
        pytest.param("{{ lipsum.__globals__ }}", "", id="lipsum-globals"),
        pytest.param("{{ range.__globals__ }}", "", id="bounded-range-globals"),
        pytest.param("{{ pods[0].__class__ }}", "", id="context-dict-class"),
        pytest.param("{{ job.format.__globals__ }}", "", id="str-method-globals"),
    ],
)
def test_sandbox_escapes_yield_nothing(source: str, error: str) -> None:
    """An escape either renders as nothing or is refused; never shows Python internals."""
    refused: TemplateError | None = None
    try:
        rendered = render_text(source)
    except TemplateError as e:
        refused, rendered = e, ""
    if refused is not None:
        assert str(refused).startswith(error or "spec.template.text: "), refused
    assert rendered == "", rendered


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ nope.attr }}", id="attribute-of-undefined"),
        pytest.param("{{ pods[7].reason }}", id="attribute-of-missing-item"),
        pytest.param("{% for x in nope %}{{ x }}{% endfor %}{{ nope.y }}", id="loop-then-attr"),
        pytest.param("{{ nope() }}", id="call-undefined"),
    ],
)
def test_undefined_use_raises(source: str) -> None:
    with pytest.raises(TemplateError, match=r"^spec\.template\.text: UndefinedError: "):
        render_text(source)


@pytest.mark.parametrize("source", ["{{ jbo }}", "{{ job }} {{ nmespace }}"])
def test_undefined_variable_raises(source: str) -> None:
    with pytest.raises(TemplateError, match="undefined"):
        render_text(source)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        pytest.param("{{ 1 / 0 }}", "ZeroDivisionError", id="zero-division"),
        pytest.param("{{ 'a' + 1 }}", "TypeError", id="type-error"),
    ],
)
def test_errors_of_user_code_become_template_errors(source: str, error: str) -> None:
    with pytest.raises(TemplateError, match=rf"^spec\.template\.text: {error}: "):
        render_text(source)


# --- referenced_names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        pytest.param("plain text", set(), id="no-names"),
        pytest.param("{{ job }} in {{ namespace }}", {"job", "namespace"}, id="two-names"),
        pytest.param("{{ pods[0].reason }}", {"pods"}, id="top-level-only"),
        pytest.param("{{ job | upper }}", {"job"}, id="filters-not-names"),
        pytest.param(
            "{% for p in pods %}{{ p.pod }}{% endfor %}", {"pods", "p"}, id="loop-variable-read"
        ),
        pytest.param("{% set x = run %}", {"run"}, id="stored-name-not-read"),
        pytest.param("{{ jbo }}", {"jbo"}, id="misspelt"),
    ],
)
def test_referenced_names(source: str, names: set[str]) -> None:
    assert referenced_names(source) == names
