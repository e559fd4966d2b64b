"""Notification spec: where messages about runs go, checked against the provider declarations.

The parser is generic: each provider type declares its recipients, options and Secret keys
(`deploybell.api.provider`), and the registry in `deploybell.notify.providers` passes the
catalogue of every registered type in.
"""

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from deploybell.api.errors import (
    DNS_SUBDOMAIN,
    SpecError,
    as_mapping,
    check_str,
    get_list,
    reject_unknown,
    shown,
)
from deploybell.api.provider import Catalogue, ProviderRules, parse_options

# Limits shared with the Notification CRD (which is generated from them).
MAX_RECIPIENTS: Final = 50
MAX_RECIPIENT_LENGTH: Final = 320
MAX_TYPE_LENGTH: Final = 32
COMMON_FIELDS: Final = ("type", "recipients", "secretRef", "template")


@dataclass(frozen=True)
class NotificationSpec:
    """A parsed, validated Notification spec; `options` is the block for its type."""

    type: str
    recipients: tuple[str, ...]
    secret_name: str | None
    options: Mapping[str, Any]
    template: Mapping[str, Any]


def parse_notification(spec: Mapping[str, Any], catalogue: Catalogue) -> NotificationSpec:
    """Validate a Notification's spec as the CRD does, and a little more strictly."""
    spec = as_mapping(spec, "spec")
    reject_unknown(spec, {*COMMON_FIELDS, *catalogue.names}, "spec")
    rules = type_rules(spec.get("type"), catalogue)
    template = spec.get("template")
    return NotificationSpec(
        type=rules.type,
        recipients=_parse_recipients(spec, rules),
        secret_name=_parse_secret_ref(spec, rules),
        options=_parse_options(spec, rules, catalogue),
        template={}
        if template is None
        else copy.deepcopy(dict(as_mapping(template, "spec.template"))),
    )


def type_rules(value: object, catalogue: Catalogue) -> ProviderRules:
    """The declaration of `spec.type`, or a SpecError listing the types there are."""
    type_ = check_str(value, "spec.type", max_length=MAX_TYPE_LENGTH)
    rules = catalogue.get(type_)
    if rules is None:
        raise SpecError(
            "spec.type", f"must be one of {', '.join(catalogue.names)}, got {shown(type_)}"
        )
    return rules


def recipient_errors(type_: str, recipients: Sequence[str], catalogue: Catalogue) -> list[str]:
    """One "spec.recipients[i]: why" line per recipient that `type_` cannot deliver to."""
    rules = catalogue.get(type_)
    if rules is None:
        return [f"spec.type: must be one of {', '.join(catalogue.names)}, got {shown(type_)}"]
    return [f"spec.recipients[{i}]: {why}" for i, why in _recipient_problems(rules, recipients)]


def _recipient_problems(
    rules: ProviderRules, recipients: Sequence[str]
) -> Iterator[tuple[int, str]]:
    for i, recipient in enumerate(recipients):
        why = rules.recipient_problem(recipient)
        if why is not None:
            yield i, why


def _parse_recipients(spec: Mapping[str, Any], rules: ProviderRules) -> tuple[str, ...]:
    items = get_list(spec, "recipients", "spec", max_items=MAX_RECIPIENTS)
    recipients = tuple(
        check_str(item, f"spec.recipients[{i}]", max_length=MAX_RECIPIENT_LENGTH)
        for i, item in enumerate(items)
    )
    if not recipients and rules.recipients.required:
        raise SpecError(
            "spec.recipients", f"at least one recipient is required for type {rules.type}"
        )
    first_index: dict[str, int] = {}
    for i, recipient in enumerate(recipients):
        if recipient in first_index:
            raise SpecError(
                f"spec.recipients[{i}]",
                f"duplicate of spec.recipients[{first_index[recipient]}] {shown(recipient)}",
            )
        first_index[recipient] = i
    for i, why in _recipient_problems(rules, recipients):
        raise SpecError(f"spec.recipients[{i}]", why)
    return recipients


def _parse_secret_ref(spec: Mapping[str, Any], rules: ProviderRules) -> str | None:
    if spec.get("secretRef") is None:
        if rules.needs_secret:
            raise SpecError(
                "spec.secretRef", f"a Secret with the credentials is required for type {rules.type}"
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


def _parse_options(
    spec: Mapping[str, Any], rules: ProviderRules, catalogue: Catalogue
) -> Mapping[str, Any]:
    for other in catalogue.names:
        if other != rules.type and spec.get(other) is not None:
            raise SpecError(
                f"spec.{other}",
                f"only the options block for the notification type (spec.{rules.type}) may be set",
            )
    raw = spec.get(rules.type)
    return parse_options(rules, {} if raw is None else as_mapping(raw, f"spec.{rules.type}"))
