"""SpecError, and the typed field readers the parsers use to raise it."""

import re
from collections.abc import Collection, Mapping
from typing import Any

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class SpecError(ValueError):
    """A spec field a human must change; `field` is its JSON path, e.g. spec.maxWaitSeconds."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type["SpecError"], tuple[str, str]]:
        return (type(self), (self.field, self.message))


def shown(value: object) -> str:
    """A short repr of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, got {shown(value)}")
    return value


def reject_unknown(spec: Mapping[str, Any], known: Collection[str], path: str) -> None:
    """Catch typos offline, as `kubectl apply` (strict field validation) does on the server."""
    for key in spec:
        if key not in known:
            raise SpecError(f"{path}.{key}", "unknown field")


def get_list(spec: Mapping[str, Any], key: str, path: str, *, max_items: int) -> list[Any]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise SpecError(f"{path}.{key}", f"must be a list, got {shown(value)}")
    if len(value) > max_items:
        raise SpecError(f"{path}.{key}", f"must have at most {max_items} items, got {len(value)}")
    return list(value)


def check_str(
    value: object,
    path: str,
    *,
    max_length: int,
    pattern: re.Pattern[str] | None = None,
    expected: str = "",
) -> str:
    """`value` as a non-empty string of at most `max_length` characters matching `pattern`."""
    if value is None:
        raise SpecError(path, "is required")
    if not isinstance(value, str):
        raise SpecError(path, f"must be a string, got {shown(value)}")
    if not value:
        raise SpecError(path, "must not be empty")
    if len(value) > max_length:
        raise SpecError(path, f"must be at most {max_length} characters, got {len(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise SpecError(path, f"must be {expected or pattern.pattern}, got {shown(value)}")
    return value


def get_str(
    spec: Mapping[str, Any],
    key: str,
    path: str,
    *,
    max_length: int,
    pattern: re.Pattern[str] | None = None,
    expected: str = "",
) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    return check_str(
        value, f"{path}.{key}", max_length=max_length, pattern=pattern, expected=expected
    )


def get_int(
    spec: Mapping[str, Any], key: str, path: str, *, default: int, minimum: int, maximum: int
) -> int:
    value = spec.get(key)
    if value is None:  # the API server drops nulls before defaulting; do the same
        return default
    # bool is an int in Python but not in JSON: `maxWaitSeconds: true` is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}", f"must be an integer, got {shown(value)}")
    if not minimum <= value <= maximum:
        raise SpecError(f"{path}.{key}", f"must be between {minimum} and {maximum}, got {value}")
    return value


def get_bool(spec: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool:
    value = spec.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"must be true or false, got {shown(value)}")
    return value
