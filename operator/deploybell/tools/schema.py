"""The CRDs' OpenAPI schemas as a validator for offline files.

What the API server checks structurally — types, enums, patterns, lengths, ranges, required and
unknown fields (kubectl's strict field validation) — is checked here with jsonschema. The CRDs'
CEL rules are not evaluated: the operator's own parsers (`deploybell.api`) check the same things,
and they run once the structure is right, as the API server runs CEL only on valid structure.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deploybell.api.constants import VERSION
from deploybell.api.errors import DNS_LABEL, DNS_SUBDOMAIN, shown
from deploybell.notify.providers import CATALOGUE

if TYPE_CHECKING:
    import jsonschema

# A source checkout (or an editable install): operator/deploybell/tools/schema.py → crds/.
_CHECKOUT_CRDS = Path(__file__).resolve().parents[3] / "crds"
CRDS_ENV = "DEPLOYBELL_CRDS_DIR"

_TYPES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}
# The CRDs' patterns in words; one regex each in deploybell.api.errors and in the CRDs, and the
# provider options' own (their fields say them in words).
_PATTERNS = {
    f"^{DNS_LABEL.pattern}$": "a DNS label (lowercase letters, digits and '-')",
    f"^{DNS_SUBDOMAIN.pattern}$": "a DNS subdomain (lowercase letters, digits, '-' and '.')",
    "^[-._a-zA-Z0-9]+$": "a ConfigMap key (letters, digits, '-', '_', '.')",
    **{
        field.schema()["pattern"]: field.expected
        for rules in CATALOGUE.types
        for field in rules.options
        if field.pattern and field.expected
    },
}


class SchemaUnavailable(RuntimeError):
    """The CRD files cannot be found; the message says where they were looked for."""


def crds_dir() -> Path:
    """$DEPLOYBELL_CRDS_DIR, else the checkout's crds/."""
    configured = os.environ.get(CRDS_ENV)
    return Path(configured) if configured else _CHECKOUT_CRDS


@functools.cache
def _schemas(directory: Path) -> Mapping[str, Mapping[str, Any]]:
    """kind → the strict object schema of our served version."""
    schemas: dict[str, Mapping[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            if version["name"] == VERSION:
                raw = version["schema"]["openAPIV3Schema"]
                schemas[crd["spec"]["names"]["kind"]] = strict(raw)
    return schemas


def schema_for(kind: str) -> Mapping[str, Any]:
    directory = crds_dir()
    try:
        return _schemas(directory)[kind]
    except (OSError, KeyError, yaml.YAMLError):
        raise SchemaUnavailable(
            f"no CRD for {kind} in {directory}; set {CRDS_ENV} to deploybell's crds/ directory"
        ) from None


def strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields refused where the API server would prune them."""
    out = copy.deepcopy(dict(schema))
    properties = out.get("properties")
    if isinstance(properties, dict):
        # status is the operator's: `kubectl apply` ignores it on objects with a status
        # subresource, so a file may carry any (e.g. an exported object).
        if "status" in properties and "metadata" in properties:
            properties["status"] = {}
        for name, sub in properties.items():
            properties[name] = strict(sub)
        preserve = out.get("x-kubernetes-preserve-unknown-fields")
        if not preserve and "additionalProperties" not in out:
            out["additionalProperties"] = False
    if isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    return out


def problems(kind: str, body: Any) -> list[tuple[str, str]]:
    """(field path, why) for every structural error, in the API server's spirit."""
    import jsonschema  # ~19 MiB with its format checkers: only `deploybell validate` pays it

    validator = jsonschema.Draft7Validator(schema_for(kind))
    found: list[tuple[str, str]] = []
    for error in validator.iter_errors(body):
        found.extend(_explain(error))
    return sorted(set(found), key=lambda p: p[0])


def field_path(parts: Iterator[str | int] | Any) -> str:
    """`spec.recipients[2]` from jsonschema's deque of keys and indexes."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(error: jsonschema.ValidationError) -> Iterator[tuple[str, str]]:
    where = field_path(error.absolute_path)
    instance, rule, value = _parts(error)
    if rule == "required":
        for name in value:
            if isinstance(instance, Mapping) and name not in instance:
                yield _join(where, name), "is required"
    elif rule == "additionalProperties":
        known = set(_schema(error).get("properties") or {})
        for name in instance:
            if name not in known:
                yield _join(where, name), "unknown field"
    else:
        yield where or "(object)", _message(error)


def _message(error: jsonschema.ValidationError) -> str:
    instance, rule, value = _parts(error)
    schema = _schema(error)
    got = _shown(instance)
    if rule == "type":
        wanted = " or ".join(
            _TYPES.get(t, t) for t in ([value] if isinstance(value, str) else value)
        )
        return f"must be {wanted}, got {got}"
    if rule == "enum":
        return f"must be one of {', '.join(str(v) for v in value)}, got {got}"
    if rule == "pattern":
        return f"must be {_PATTERNS.get(value, f'a match of {value}')}, got {got}"
    if rule == "minLength":
        return "must not be empty" if value == 1 else f"must be at least {value} characters"
    if rule == "maxLength":
        return f"must be at most {value} characters, got {len(instance)}"
    if rule in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"must be between {low} and {high}, got {got}"
        return (
            f"must be at least {low}, got {got}"
            if low is not None
            else f"must be at most {high}, got {got}"
        )
    if rule == "maxItems":
        return f"must have at most {value} items, got {len(instance)}"
    if rule == "maxProperties":
        return f"must have at most {value} entries, got {len(instance)}"
    return str(error.message)


def _parts(error: jsonschema.ValidationError) -> tuple[Any, str, Any]:
    """The value, the rule it broke and the rule's argument (typed loosely by the stubs)."""
    return error.instance, str(error.validator), error.validator_value


def _schema(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _shown(value: object) -> str:
    """As YAML writes it where that differs from Python (null, true, false)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return shown(value)
