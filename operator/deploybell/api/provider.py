"""What a provider type declares about its part of the Notification API (pure data).

Each provider module (`deploybell.notify.providers.<type>`) fills in one `ProviderRules`; the
Notification parser, the CRD generator, `deploybell validate` and the README table all read these
declarations, so a type's recipients, options and Secret keys are written down once. The same
object yields the OpenAPI schema (`schema()`) and the Python check (`parse()`) of a field, so the
two cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploybell.api.errors import SpecError, as_mapping, shown

_TYPE_WORDS = {
    "boolean": "true or false",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "map": "a map of strings",
}


@dataclass(frozen=True)
class Field:
    """One field of a type's options block (`spec.<type>.<name>`)."""

    name: str
    type: str  # boolean | string | integer | number | map (string → string)
    doc: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None  # matched in full
    expected: str = ""  # the pattern in words, for error messages
    enum: tuple[str, ...] = ()
    max_entries: int | None = None  # for maps
    check: Callable[[Any, str], Any] | None = None
    """A further check beyond the schema (raises SpecError), e.g. header names and values."""

    def __post_init__(self) -> None:
        if self.type not in _TYPE_WORDS:
            raise ValueError(f"option {self.name}: unknown field type {self.type!r}")

    def schema(self) -> dict[str, Any]:
        """The OpenAPI v3 schema of the field, as the CRD carries it."""
        out: dict[str, Any] = {"type": "object" if self.type == "map" else self.type}
        out["description"] = self.doc
        if self.type == "map":
            out["additionalProperties"] = {"type": "string"}
        bounds = {
            "minimum": self.minimum,
            "maximum": self.maximum,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "maxProperties": self.max_entries,
        }
        out.update({k: v for k, v in bounds.items() if v is not None})
        if self.exclusive_minimum:
            out["exclusiveMinimum"] = True
        if self.pattern is not None:
            # grouped, so that an alternation is anchored as a whole, as `re.fullmatch` reads it
            out["pattern"] = f"^(?:{self.pattern})$"
        if self.enum:
            out["enum"] = list(self.enum)
        if self.default is not None:
            out["default"] = self.default
        return out

    def parse(self, value: Any, path: str) -> Any:
        """The value, checked as the CRD's schema (and `check`) would; SpecError names `path`."""
        wrong = SpecError(path, f"must be {_TYPE_WORDS[self.type]}, got {shown(value)}")
        if self.type == "boolean" and not isinstance(value, bool):
            raise wrong
        if self.type == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)  # 1.0 is an integer to JSON Schema and to the API server
        if self.type in ("integer", "number"):
            numeric = int if self.type == "integer" else int | float
            if isinstance(value, bool) or not isinstance(value, numeric):
                raise wrong
            self._check_range(value, path)
        if self.type == "string":
            if not isinstance(value, str):
                raise wrong
            self._check_string(value, path)
        if self.type == "map":
            mapping = as_mapping(value, path)
            if self.max_entries is not None and len(mapping) > self.max_entries:
                raise SpecError(
                    path, f"must have at most {self.max_entries} entries, got {len(mapping)}"
                )
            for key, item in mapping.items():
                if not isinstance(item, str):
                    raise SpecError(f"{path}.{key}", f"must be a string, got {shown(item)}")
            value = dict(mapping)
        return self.check(value, path) if self.check is not None else value

    def _check_range(self, value: float, path: str) -> None:
        low, high = self.minimum, self.maximum
        below = low is not None and (value <= low if self.exclusive_minimum else value < low)
        if below or (high is not None and value > high):
            above = "above" if self.exclusive_minimum else "at least"
            if low is not None and high is not None:
                raise SpecError(path, f"must be {above} {low:g} and at most {high:g}, got {value}")
            if low is not None:
                raise SpecError(path, f"must be {above} {low:g}, got {value}")
            raise SpecError(path, f"must be at most {high:g}, got {value}")

    def _check_string(self, value: str, path: str) -> None:
        if self.min_length is not None and len(value) < self.min_length:
            raise SpecError(path, "must not be empty" if self.min_length == 1 else "is too short")
        if self.max_length is not None and len(value) > self.max_length:
            raise SpecError(path, f"must be at most {self.max_length} characters, got {len(value)}")
        if self.enum and value not in self.enum:
            raise SpecError(path, f"must be one of {', '.join(self.enum)}, got {shown(value)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise SpecError(path, f"must be {self.expected or self.pattern}, got {shown(value)}")


@dataclass(frozen=True)
class Recipients:
    """A type's recipient syntax (Shippable's `pointer.recipients`)."""

    syntax: str = ""  # in words, e.g. "'#channel' or '@user'"; "" when the type takes none
    pattern: str | None = None  # each recipient must match it in full (also a CEL rule)
    required: bool = True  # at least one recipient
    check: Callable[[str], str | None] | None = None
    """Why a recipient that matches `pattern` still cannot be used (None when it can)."""
    valid: tuple[str, ...] = ()  # examples, shown in docs and proven by the contract test
    invalid: tuple[str, ...] = ()
    doc: str = ""  # what a recipient does for this type, for the docs
    required_with: frozenset[str] = frozenset()
    """Secret keys that make a recipient necessary when `required` is False (Mattermost's REST
    API posts to a channel it must be told; its incoming webhook has one of its own)."""

    @property
    def taken(self) -> bool:
        """Whether the type takes recipients at all (webhook-style types do not)."""
        return bool(self.syntax)


@dataclass(frozen=True)
class SecretKey:
    """One key of the Secret a Notification names in `spec.secretRef`."""

    name: str
    doc: str
    sensitive: bool = True  # masked everywhere (URLs with tokens count)


@dataclass(frozen=True)
class ProviderRules:
    """Everything the API knows about one provider type."""

    type: str
    title: str  # how people call the destination: "Microsoft Teams"
    doc: str  # one sentence: what a message becomes there
    recipients: Recipients
    options: tuple[Field, ...] = ()
    secret_keys: tuple[SecretKey, ...] = ()
    secret_needs: tuple[frozenset[str], ...] = ()
    """Alternatives: the Secret must hold every key of one of them. Empty: no Secret needed."""
    edits_in_place: bool = False  # the outcome updates the start message
    threads: bool = False  # the outcome is posted in the start message's thread
    setup: str = ""
    """How to get credentials (README), e.g. the app and scopes to create, in Markdown."""

    @property
    def needs_secret(self) -> bool:
        return bool(self.secret_needs)

    def option(self, name: str) -> Field | None:
        return next((f for f in self.options if f.name == name), None)

    def recipient_problem(self, recipient: str) -> str | None:
        """Why this type cannot deliver to `recipient` (None when it can)."""
        if not self.recipients.taken:
            return f"type {self.type} takes no recipients, got {shown(recipient)}"
        pattern = self.recipients.pattern
        if pattern is not None and not re.fullmatch(pattern, recipient):
            article = "an" if self.type[:1] in "aeiou" else "a"
            return (
                f"{article} {self.type} recipient must be {self.recipients.syntax}, "
                f"got {shown(recipient)}"
            )
        return self.recipients.check(recipient) if self.recipients.check else None

    def secret_problem(
        self, secret_name: str, keys: Sequence[str] | None, recipients: Sequence[str] | None = None
    ) -> str | None:
        """Why the Secret (its keys, None when it is missing) cannot serve this type; with the
        Notification's `recipients`, also when those keys need a recipient and there is none."""
        if keys is None:
            return f"Secret {secret_name} not found"
        if self.secret_needs and not any(need <= set(keys) for need in self.secret_needs):
            return (
                f"Secret {secret_name} has no key {self.secret_wording()} (needed by {self.type})"
            )
        needing = self.recipients.required_with
        if recipients is not None and not recipients and needing and needing <= set(keys):
            return (
                f"Secret {secret_name} has {' and '.join(sorted(needing))}: "
                f"at least one recipient ({self.recipients.syntax}) is required with them"
            )
        return None

    def secret_wording(self) -> str:
        """`token or webhookUrl`; `webhookUrl, or token and url`."""
        alternatives = [" and ".join(sorted(need)) for need in self.secret_needs]
        joiner = ", or " if any(len(need) > 1 for need in self.secret_needs) else " or "
        return joiner.join(alternatives)


def parse_options(rules: ProviderRules, block: Mapping[str, Any]) -> dict[str, Any]:
    """The options block with defaults filled in; unknown fields are refused, as kubectl does."""
    path = f"spec.{rules.type}"
    known = {f.name: f for f in rules.options}
    options = {f.name: f.default for f in rules.options if f.default is not None}
    for key, value in block.items():
        option = known.get(key)
        if option is None:
            raise SpecError(f"{path}.{key}", "unknown field")
        if value is not None:  # the API server drops nulls before defaulting; so do we
            options[key] = option.parse(value, f"{path}.{key}")
    return options


def one_word(text: str) -> Callable[[Any, str], Any]:
    """A `Field.check` refusing values with spaces or control characters (names, tokens)."""

    def check(value: Any, path: str) -> Any:
        if not isinstance(value, str) or any(c.isspace() or ord(c) < 0x20 for c in value):
            raise SpecError(path, f"must be {text} without spaces, got {shown(value)}")
        return value

    return check


@dataclass(frozen=True)
class Catalogue:
    """The registered types in order; what the parsers take instead of a global list."""

    types: tuple[ProviderRules, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [t.type for t in self.types]
        if len(set(names)) != len(names):
            raise ValueError(f"provider types registered twice: {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.type for t in self.types)

    def get(self, type_: str) -> ProviderRules | None:
        return next((t for t in self.types if t.type == type_), None)
