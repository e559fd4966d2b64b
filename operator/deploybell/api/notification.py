"""Notification spec: where messages about runs go, and the recipient syntax per type."""

import copy
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from deploybell.api.constants import PROVIDER_TYPES
from deploybell.api.errors import (
    DNS_SUBDOMAIN,
    SpecError,
    as_mapping,
    check_str,
    get_list,
    reject_unknown,
    shown,
)

# Shippable needed no integration for irc and email; the others cannot work without one.
NEEDS_SECRET: Final = frozenset({"slack", "hipchat", "webhook"})

# Keys the Secret must hold per type: each inner tuple is "one of these".
REQUIRED_SECRET_KEYS: Final[Mapping[str, tuple[tuple[str, ...], ...]]] = {
    "slack": (("token", "webhookUrl"),),
    "hipchat": (("token",),),
    "webhook": (("url",),),
}


def secret_problem(type_: str, secret_name: str, keys: Collection[str] | None) -> str | None:
    """Why the Secret cannot serve this Notification type (None when it can)."""
    if keys is None:
        return f"Secret {secret_name} not found"
    for choices in REQUIRED_SECRET_KEYS.get(type_, ()):
        if not any(key in keys for key in choices):
            wanted = " or ".join(choices)
            return f"Secret {secret_name} has no key {wanted} (needed by {type_})"
    return None


# Limits shared with crds/deploybell.io_notifications.yaml.
MAX_RECIPIENTS: Final = 50
MAX_RECIPIENT_LENGTH: Final = 320
MAX_HEADERS: Final = 50

_SLACK = re.compile(r"[#@][^\s,]+")
_HIPCHAT = re.compile(r"[#@]\S(.*\S)?")  # HipChat room names may contain spaces
_IRC = re.compile(r"[A-Za-z0-9.-]+(?::([0-9]+))?#[^\s,]+")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A plain dot-atom address; display names ("Ops <ops@example.com>") are not recipients.
_EMAIL = re.compile(rf"{_ATEXT}+(\.{_ATEXT}+)*@{_LABEL}(\.{_LABEL})*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SPEC_FIELDS = frozenset({"type", "recipients", "secretRef", "template", *PROVIDER_TYPES})


@dataclass(frozen=True)
class NotificationSpec:
    """A parsed, validated Notification spec; `options` is the block for its type."""

    type: str
    recipients: tuple[str, ...]
    secret_name: str | None
    options: Mapping[str, Any]
    template: Mapping[str, Any]


def parse_notification(spec: Mapping[str, Any]) -> NotificationSpec:
    """Validate a Notification's spec as the CRD does, and a little more strictly."""
    spec = as_mapping(spec, "spec")
    reject_unknown(spec, _SPEC_FIELDS, "spec")
    type_ = check_str(spec.get("type"), "spec.type", max_length=32)
    if type_ not in PROVIDER_TYPES:
        raise SpecError(
            "spec.type", f"must be one of {', '.join(PROVIDER_TYPES)}, got {shown(type_)}"
        )
    template = spec.get("template")
    return NotificationSpec(
        type=type_,
        recipients=_parse_recipients(spec, type_),
        secret_name=_parse_secret_ref(spec, type_),
        options=_parse_options(spec, type_),
        template={}
        if template is None
        else copy.deepcopy(dict(as_mapping(template, "spec.template"))),
    )


def recipient_errors(type: str, recipients: Sequence[str]) -> list[str]:
    """One "spec.recipients[i]: why" line per recipient that `type` cannot deliver to."""
    if type not in PROVIDER_TYPES:
        return [f"spec.type: must be one of {', '.join(PROVIDER_TYPES)}, got {shown(type)}"]
    return [f"spec.recipients[{i}]: {why}" for i, why in _recipient_problems(type, recipients)]


def _recipient_problems(type_: str, recipients: Sequence[str]) -> Iterator[tuple[int, str]]:
    for i, recipient in enumerate(recipients):
        why = _recipient_problem(type_, recipient)
        if why is not None:
            yield i, why


def _recipient_problem(type_: str, recipient: str) -> str | None:
    if type_ == "slack" and not _SLACK.fullmatch(recipient):
        return f"a slack recipient must be '#channel' or '@user', got {shown(recipient)}"
    if type_ == "hipchat" and not _HIPCHAT.fullmatch(recipient):
        return f"a hipchat recipient must be '#room' or '@user', got {shown(recipient)}"
    if type_ == "irc":
        return _irc_problem(recipient)
    if type_ == "email":
        return _email_problem(recipient)
    return None


def _irc_problem(recipient: str) -> str | None:
    match = _IRC.fullmatch(recipient)
    if match is None:
        return (
            "an irc recipient must be 'host[:port]#channel' (e.g. 'irc.libera.chat:6697#ops'), "
            f"got {shown(recipient)}"
        )
    port = match.group(1)
    if port is not None and not 1 <= int(port) <= 65535:
        return f"the port of an irc recipient must be between 1 and 65535, got {port}"
    return None


def _email_problem(recipient: str) -> str | None:
    local, _, domain = recipient.rpartition("@")
    if not _EMAIL.fullmatch(recipient) or len(local) > 64 or len(recipient) > 254:
        return (
            f"an email recipient must be an address like 'ops@example.com', got {shown(recipient)}"
        )
    if len(domain) > 253:
        return f"the domain of an email recipient must be at most 253 characters, got {len(domain)}"
    return None


def _parse_recipients(spec: Mapping[str, Any], type_: str) -> tuple[str, ...]:
    items = get_list(spec, "recipients", "spec", max_items=MAX_RECIPIENTS)
    recipients = tuple(
        check_str(item, f"spec.recipients[{i}]", max_length=MAX_RECIPIENT_LENGTH)
        for i, item in enumerate(items)
    )
    if not recipients and type_ != "webhook":
        raise SpecError("spec.recipients", f"at least one recipient is required for type {type_}")
    first_index: dict[str, int] = {}
    for i, recipient in enumerate(recipients):
        if recipient in first_index:
            raise SpecError(
                f"spec.recipients[{i}]",
                f"duplicate of spec.recipients[{first_index[recipient]}] {shown(recipient)}",
            )
        first_index[recipient] = i
    for i, why in _recipient_problems(type_, recipients):
        raise SpecError(f"spec.recipients[{i}]", why)
    return recipients


def _parse_secret_ref(spec: Mapping[str, Any], type_: str) -> str | None:
    if spec.get("secretRef") is None:
        if type_ in NEEDS_SECRET:
            raise SpecError(
                "spec.secretRef", f"a Secret with the credentials is required for type {type_}"
            )
        return None
    ref = as_mapping(spec["secretRef"], "spec.secretRef")
    reject_unknown(ref, {"name"}, "spec.secretRef")
    return check_str(
        ref.get("name"),
        "spec.secretRef.name",
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        expected="a Secret name (DNS subdomain)",
    )


def _check_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(path, f"must be true or false, got {shown(value)}")
    return value


def _check_text(max_length: int) -> Callable[[object, str], str]:
    def check(value: object, path: str) -> str:
        return check_str(value, path, max_length=max_length)

    return check


def _check_headers(value: object, path: str) -> dict[str, str]:
    headers = as_mapping(value, path)
    if len(headers) > MAX_HEADERS:
        raise SpecError(path, f"must have at most {MAX_HEADERS} entries, got {len(headers)}")
    for name, header_value in headers.items():
        check_str(name, path, max_length=256, pattern=_HEADER_NAME, expected="an HTTP header name")
        if not isinstance(header_value, str):
            raise SpecError(f"{path}.{name}", f"must be a string, got {shown(header_value)}")
        if any(c in header_value for c in "\r\n\0"):
            raise SpecError(f"{path}.{name}", "must not contain line breaks or NUL")
    return dict(headers)


# The known fields of each options block; unknown ones are kept as they are.
_OPTION_FIELDS: Final[Mapping[str, Mapping[str, Callable[[object, str], object]]]] = {
    "slack": {"threads": _check_bool},
    "hipchat": {"notify": _check_bool},
    "irc": {
        "nick": _check_text(64),
        "notice": _check_bool,
        "join": _check_bool,
        "tls": _check_bool,
    },
    "email": {"subjectPrefix": _check_text(200)},
    "webhook": {"headers": _check_headers},
}
# The CRD's defaults; repeated here so they hold when the block is absent too.
_OPTION_DEFAULTS: Final[Mapping[str, Mapping[str, object]]] = {
    "slack": {"threads": True},
    "irc": {"notice": True, "join": True},
}


def _parse_options(spec: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for other in PROVIDER_TYPES:
        if other != type_ and spec.get(other) is not None:
            raise SpecError(
                f"spec.{other}",
                f"only the options block for the notification type (spec.{type_}) may be set",
            )
    raw = spec.get(type_)
    block = {} if raw is None else as_mapping(raw, f"spec.{type_}")
    options: dict[str, Any] = dict(_OPTION_DEFAULTS.get(type_, {}))
    for key, value in block.items():
        if value is None:
            continue
        check = _OPTION_FIELDS[type_].get(key)
        options[key] = check(value, f"spec.{type_}.{key}") if check else copy.deepcopy(value)
    return options
