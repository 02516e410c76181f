"""Webhook payload and ticket text templates: any JSON whose strings may hold `{{customer.<field>}}`
placeholders (built-in fields and `customer.attributes.<key>`). A string that is one placeholder alone
becomes the value itself (a number stays a number).

Personal fields (privacy.personal_data decides which) are rendered as themselves only when the caller says
the receiver may have them (a destination that names the consent purpose its deliveries need, and only for
customers who gave it); anywhere else they are rendered masked.
"""

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from crm_tags.models import CUSTOMER_FILE_COLUMNS
from privacy import personal_data

PLACEHOLDER = re.compile(r"\{\{\s*customer\.([A-Za-z0-9_.\-]+)\s*\}\}")
# the customer's own fields: the columns of a customer file
FIELDS = CUSTOMER_FILE_COLUMNS
ATTRIBUTE = re.compile(r"^attributes\.[A-Za-z0-9_\-]{1,64}$")


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, f"{path}[{index}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")


def _known(name: str) -> bool:
    return name in FIELDS or bool(ATTRIBUTE.match(name))


def template_errors(template: Any, path: str) -> list[str]:
    """The paths of strings that name an unknown customer field."""
    return [
        at for at, text in _strings(template, path) for name in PLACEHOLDER.findall(text) if not _known(name)
    ]


def personal_placeholders(template: Any, path: str) -> list[tuple[str, str]]:
    """(path, field) of each placeholder naming a personal field."""
    return [
        (at, name)
        for at, text in _strings(template, path)
        for name in PLACEHOLDER.findall(text)
        if _known(name) and personal_data.is_personal(name)
    ]


def customer_value(customer: Any, name: str) -> Any:
    if name.startswith("attributes."):
        return (customer.attributes or {}).get(name.removeprefix("attributes."))
    value = getattr(customer, name, None)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def render(template: Any, customer: Any, *, personal_allowed: bool) -> Any:
    """The template with the customer's values in; personal ones masked unless `personal_allowed`."""

    def value(name: str) -> Any:
        raw = customer_value(customer, name)
        if not personal_allowed and personal_data.is_personal(name):
            return personal_data.mask(name, raw)
        return raw

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            whole = PLACEHOLDER.fullmatch(node.strip())
            if whole:
                return value(whole.group(1))
            return PLACEHOLDER.sub(
                lambda m: "" if value(m.group(1)) is None else str(value(m.group(1))), node
            )
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(template)


def has_placeholders(template: Any) -> bool:
    """Whether any string in the template names a customer field (else it renders the same for everyone)."""
    return any(PLACEHOLDER.search(text) for _path, text in _strings(template, ""))
