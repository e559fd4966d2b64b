"""The provider registry is the one list: the CRD, the docs, the peers and the golden files all
follow it, and each type's declaration holds (its examples, its schema against its parser)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deploybell.api.errors import SpecError
from deploybell.api.provider import Field
from deploybell.notify import providers
from deploybell.tools.crds import dump, notification_crd
from tests.support.peers import CONTRACTS

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "render"
EVENTS = ("start", "success", "failure", "cancel")


def _hack(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), ROOT / "hack" / name)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_crds_and_their_copies_are_generated_from_the_registry() -> None:
    stale = _hack("gen-crds.py").stale()
    assert stale == [], "run: .venv/bin/python hack/gen-crds.py --write"


def test_the_readme_provider_table_is_generated_from_the_registry() -> None:
    gen = _hack("gen-api-docs.py")
    readme = (ROOT / "README.md").read_text()
    assert gen.updated(readme) == readme, "run: .venv/bin/python hack/gen-api-docs.py --write"
    for type_ in providers.NAMES:
        assert f"| `{type_}` |" in gen.providers()


def test_the_crd_lists_exactly_the_registered_types() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "deploybell.io_notifications.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["type"]["enum"] == list(providers.NAMES)
    blocks = [name for name in spec["properties"] if name in providers.NAMES]
    assert blocks == list(providers.NAMES)
    for t in providers.CATALOGUE.types:
        assert set(spec["properties"][t.type]["properties"]) == {f.name for f in t.options}


def test_the_generated_yaml_reads_back_as_the_same_crd() -> None:
    base = yaml.safe_load((ROOT / "hack" / "crds" / "notifications.base.yaml").read_text())
    crd = notification_crd(base, providers.CATALOGUE)
    assert yaml.safe_load(dump(crd)) == crd


def test_every_type_has_a_peer_and_golden_files() -> None:
    assert list(CONTRACTS) == list(providers.NAMES)
    missing = [
        name
        for t in providers.NAMES
        for name in (f"{t}.yaml", *(f"{t}.{e}.txt" for e in EVENTS))
        if not (GOLDEN / name).exists()
    ]
    assert missing == []


def _cel_regex(type_: str) -> re.Pattern[str] | None:
    crd = yaml.safe_load((ROOT / "crds" / "deploybell.io_notifications.yaml").read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for rule in spec["x-kubernetes-validations"]:
        if rule["rule"].startswith(f"self.type != '{type_}'"):
            match = re.search(r"matches\(r'([^']*)'\)", rule["rule"])
            return re.compile(match.group(1)) if match else None
    return None


@pytest.mark.parametrize("rules", providers.CATALOGUE.types, ids=providers.NAMES)
def test_recipient_examples_hold_in_python_and_in_the_crd(rules: Any) -> None:
    recipients = rules.recipients
    cel = _cel_regex(rules.type)
    if not recipients.taken:
        assert providers.recipient_errors(rules.type, ["anything"])[0].endswith(
            f"type {rules.type} takes no recipients, got 'anything'"
        )
        return
    assert recipients.valid, "declare recipients it accepts"
    assert recipients.invalid, "declare recipients it refuses"
    for good in recipients.valid:
        assert providers.recipient_errors(rules.type, [good]) == [], good
        assert cel is None or cel.fullmatch(good), good
    for bad in recipients.invalid:
        (error,) = providers.recipient_errors(rules.type, [bad])
        assert error.startswith("spec.recipients[0]: "), error


FIELDS = [(t.type, f) for t in providers.CATALOGUE.types for f in t.options]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=5,
)


@pytest.mark.parametrize(("type_", "field"), FIELDS, ids=[f"{t}.{f.name}" for t, f in FIELDS])
def test_an_option_schema_and_its_parser_agree(type_: str, field: Field) -> None:
    """What the CRD accepts the parser accepts, and the other way round (beyond `check`)."""
    validator = jsonschema.Draft7Validator(_draft7(field.schema()))

    @settings(max_examples=150, deadline=None)
    @given(value=_JSON | _near(field))
    def agree(value: Any) -> None:
        if value is None:
            return  # a null is dropped by the API server before validation
        by_schema = validator.is_valid(value)
        try:
            field.parse(value, f"spec.{type_}.{field.name}")
            by_parser = True
        except SpecError:
            by_parser = field.check is not None and by_schema  # `check` may refuse more
        assert by_schema == by_parser, (value, field.schema())

    agree()


def _near(field: Field) -> st.SearchStrategy[Any]:
    """Values at the field's own edges: its bounds, lengths, enum and default."""
    values: list[Any] = [field.default] if field.default is not None else []
    for bound in (field.minimum, field.maximum):
        if bound is not None:
            values += [bound, bound - 1, bound + 1, bound + 0.5]
    for length in (field.min_length, field.max_length):
        if length is not None:
            values += ["a" * length, "a" * (length + 1), "a" * max(length - 1, 0)]
    values += list(field.enum)
    return st.sampled_from(values) if values else st.nothing()


def _draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI's boolean exclusiveMinimum as draft 7's number, and patterns read as the API server
    reads them: Go's `$` (no multi-line flag) is the end of the text, where Python's `$` also
    matches before a final newline (so 'main\\n' passed here and no API server would admit it)."""
    out = {k: _draft7(v) if isinstance(v, dict) else v for k, v in schema.items()}
    if out.pop("exclusiveMinimum", False):
        out["exclusiveMinimum"] = out.pop("minimum")
    pattern = out.get("pattern")
    if isinstance(pattern, str) and pattern.endswith("$") and not pattern.endswith("\\$"):
        out["pattern"] = pattern[:-1] + r"\Z"
    return out


@pytest.mark.parametrize("rules", providers.CATALOGUE.types, ids=providers.NAMES)
def test_a_secret_without_the_needed_keys_is_named(rules: Any) -> None:
    assert rules.secret_problem("creds", None) == "Secret creds not found"
    if not rules.needs_secret:
        assert rules.secret_problem("creds", []) is None
        return
    problem = rules.secret_problem("creds", ["unrelated"])
    assert problem == f"Secret creds has no key {rules.secret_wording()} (needed by {rules.type})"
    for need in rules.secret_needs:
        assert rules.secret_problem("creds", sorted(need)) is None
    declared = {k.name for k in rules.secret_keys}
    assert set().union(*rules.secret_needs) <= declared


def test_an_unknown_option_is_refused_for_every_type() -> None:
    for rules in providers.CATALOGUE.types:
        spec = {
            "type": rules.type,
            "recipients": list(rules.recipients.valid[:1]),
            "secretRef": {"name": "s"},
            rules.type: {"noSuchOption": True},
        }
        with pytest.raises(SpecError) as caught:
            providers.parse(spec)
        assert caught.value.field == f"spec.{rules.type}.noSuchOption"


def test_an_integral_number_is_an_integer_as_json_schema_says() -> None:
    """`panelId: 2.0` passes the CRD (and the API server stores 2): the parser agrees."""
    field = Field("count", "integer", "A count.", minimum=1)
    parsed = field.parse(2.0, "spec.x.count")
    assert (parsed, type(parsed)) == (2, int)
    with pytest.raises(SpecError):
        field.parse(1.5, "spec.x.count")
    with pytest.raises(SpecError):
        field.parse(0.0, "spec.x.count")
