"""The one module that knows which customer values are personal, how each is masked, and who may see
it. Every output path (pages, API, previews and their reasons, rule literals, exports, reports, errors,
audit history, notifications, logs) asks it; none masks by hand.

    shown = personal_data.customer_values(customer, viewer=request.user)          # one customer
    rows = personal_data.shown_rows(rows, viewer=request.user, columns={2: "email"})  # CSV/report rows
    definition = personal_data.definition_for(version.definition, viewer=request.user)

A viewer with `view_pii` gets values as they are, and each such read is written to the access log
(`record_unmasked`); everyone else gets the masked form.
"""

import copy
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from accounts import roles
from accounts.models import User
from config.logging import mask_pii

log = logging.getLogger(__name__)

Viewer = User | AnonymousUser | None

HIDDEN = "***"


def mask_email(value: str | None) -> str | None:
    """`zhang.wei@example.com` → `z***@example.com`."""
    if not value:
        return value
    local, sep, domain = str(value).partition("@")
    if not sep:
        return local[:1] + HIDDEN
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str | None) -> str | None:
    """`13812345678` → `138****5678`; short numbers keep only their last two digits."""
    if not value:
        return value
    digits = str(value).strip()
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


def mask_name(value: str | None) -> str | None:
    """`张伟` → `张*`, `Zhang Wei` → `Z***`: the first character only."""
    if not value:
        return value
    text = str(value).strip()
    if not text:
        return text
    return text[:1] + ("*" if len(text) <= 3 and not text.isascii() else HIDDEN)


def mask_date(value: date | str | None) -> str | None:
    """A birth date is hidden whole (`****-**-**`)."""
    if value in (None, ""):
        return None
    return "****-**-**"


def mask_identifier(value: Any) -> Any:
    """An identifier (WeChat openid, member number...) keeps its first character."""
    if value in (None, ""):
        return value
    if isinstance(value, (list, dict)):
        return HIDDEN
    return str(value)[:1] + HIDDEN


# Built-in customer fields that are personal, with their masked form.
PERSONAL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": mask_name,
    "email": mask_email,
    "phone": mask_phone,
    "birth_date": mask_date,
}
# Free-attribute keys that are personal whatever an admin marks (identifiers of the person).
BUILTIN_PERSONAL_ATTRIBUTES = frozenset(
    {"wechat_openid", "wechat_unionid", "openid", "unionid", "member_no", "id_card", "address", "mobile"}
)
_KEYS_CACHE = "privacy:personal-attribute-keys"


def personal_attribute_keys() -> frozenset[str]:
    """Attribute keys that are personal: the built-in identifiers and those an admin marked."""
    keys = cache.get(_KEYS_CACHE)
    if keys is None:
        from privacy.models import PersonalAttributeKey

        keys = sorted(PersonalAttributeKey.objects.values_list("key", flat=True))
        cache.set(_KEYS_CACHE, keys, 300)
    return BUILTIN_PERSONAL_ATTRIBUTES | frozenset(keys)


def forget_attribute_keys() -> None:
    """Called when an admin marks or unmarks a key."""
    cache.delete(_KEYS_CACHE)


def is_personal(field: str) -> bool:
    """True for a personal built-in field (`email`) or attribute (`attributes.wechat_openid`)."""
    if field in PERSONAL_FIELDS:
        return True
    if field.startswith("attributes."):
        return field.removeprefix("attributes.") in personal_attribute_keys()
    return False


def mask(field: str, value: Any) -> Any:
    """The masked form of one value of `field` (unchanged when the field is not personal)."""
    if field in PERSONAL_FIELDS:
        return PERSONAL_FIELDS[field](value)
    if is_personal(field):
        return mask_identifier(value)
    return value


def can_see(viewer: Viewer) -> bool:
    """Only `view_pii` sees personal values unmasked."""
    return viewer is not None and roles.can_view_pii(viewer)


# --- values for a viewer ---------------------------------------------------------------------------


def value_for(field: str, value: Any, *, viewer: Viewer) -> Any:
    """One value as this viewer may see it."""
    if can_see(viewer):
        return value
    return mask(field, value)


def attributes_for(attributes: dict[str, Any] | None, *, viewer: Viewer) -> dict[str, Any]:
    """A customer's free attributes with the personal keys masked for this viewer."""
    attributes = dict(attributes or {})
    if can_see(viewer):
        return attributes
    keys = personal_attribute_keys()
    return {k: (mask_identifier(v) if k in keys else v) for k, v in attributes.items()}


def customer_values(customer: Any, *, viewer: Viewer) -> dict[str, Any]:
    """The personal fields of one customer (an object with the model's attributes) for this viewer."""
    values = {
        field: value_for(field, getattr(customer, field, None), viewer=viewer) for field in PERSONAL_FIELDS
    }
    values["attributes"] = attributes_for(getattr(customer, "attributes", None), viewer=viewer)
    return values


def apply_to_customers(customers: Iterable[Any], *, viewer: Viewer) -> list[Any]:
    """Set `<field>_shown` and `attributes_shown` on each customer object for this viewer (for templates
    and serializers, which then read only the *_shown values)."""
    customers = list(customers)
    for customer in customers:
        for field, value in customer_values(customer, viewer=viewer).items():
            setattr(customer, f"{field}_shown", value)
    return customers


def shown_rows(
    rows: Iterable[Sequence[Any]], *, viewer: Viewer, columns: dict[int, str]
) -> Iterator[list[Any]]:
    """Rows (CSV, report) with the columns at the given positions masked by field unless view_pii."""
    if can_see(viewer):
        for row in rows:
            yield list(row)
        return
    for row in rows:
        out = list(row)
        for index, field in columns.items():
            out[index] = mask(field, out[index])
        yield out


def row_maskers(*, unmasked: bool, columns: dict[int, str]) -> dict[int, Callable[[Any], Any]]:
    """Per-column maskers for writers that take {column index: function}, for a file made for someone
    who may (`unmasked`, decided by `can_see`) or may not see personal values."""
    if unmasked:
        return {}
    return {index: (lambda value, field=field: mask(field, value)) for index, field in columns.items()}


def sample_values_for(values: dict[str, Any], *, viewer: Viewer) -> dict[str, Any]:
    """A rule preview's values (label → value) as this viewer may see them: a personal attribute leaf's
    value shows as matched, never as itself."""
    if can_see(viewer):
        return values
    return {
        label: (_("(hidden)") if is_personal(label) and v is not None else v) for label, v in values.items()
    }


# --- rules ------------------------------------------------------------------------------------------


def _walk(node: Any, path: str) -> Iterator[tuple[str, dict]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for key in ("all", "any"):
        children = node.get(key)
        if isinstance(children, list):
            for index, child in enumerate(children):
                yield from _walk(child, f"{path}.{key}[{index}]" if path else f"{key}[{index}]")
    if "not" in node:
        yield from _walk(node["not"], f"{path}.not" if path else "not")


def rule_personal_fields(definition: Any) -> list[tuple[str, str]]:
    """(path, field) of every leaf that reads a personal field, in tree order."""
    found = []
    for path, node in _walk(definition, ""):
        field = node.get("attr")
        if isinstance(field, str) and is_personal(field):
            found.append((f"{path}.attr" if path else "attr", field))
    return found


class PersonalRuleForbidden(PermissionDenied):
    """A rule reads personal fields and the person lacks view_pii."""

    def __init__(self, found: list[tuple[str, str]]) -> None:
        self.found = found
        fields = ", ".join(sorted({field for _path, field in found}))
        super().__init__(
            _(
                "This rule reads personal data (%(fields)s); only people allowed to see personal data may build or preview it."
            )
            % {"fields": fields}
        )


def check_rule_allowed(definition: Any, *, viewer: Viewer) -> None:
    """Raise PersonalRuleForbidden when a viewer without view_pii would build or preview a rule that reads
    a personal field (its preview, counts and sample would reveal the values)."""
    if can_see(viewer):
        return
    found = rule_personal_fields(definition)
    if found:
        raise PersonalRuleForbidden(found)


def definition_for(definition: Any, *, viewer: Viewer) -> Any:
    """A rule definition as this viewer may see it: literal values of personal leaves masked."""
    if can_see(viewer):
        return definition
    masked = copy.deepcopy(definition)
    for _path, node in _walk(masked, ""):
        field = node.get("attr")
        if not isinstance(field, str) or "value" not in node or node.get("op") == "is_null":
            continue
        value = node["value"]
        if is_personal(field):
            node["value"] = [HIDDEN for _item in value] if isinstance(value, list) else HIDDEN
        elif isinstance(value, list):
            # an e-mail address or phone number typed into any other condition is masked all the same
            node["value"] = [scrub_text(v) if isinstance(v, str) else v for v in value]
        elif isinstance(value, str):
            node["value"] = scrub_text(value)
    return masked


# --- free text --------------------------------------------------------------------------------------


def scrub_text(text: str) -> str:
    """Mask e-mail addresses and mainland mobile numbers wherever they appear in free text (error
    messages, build errors); the log formatter uses the same patterns."""
    return mask_pii(text) if text else text


def text_for(text: str, *, viewer: Viewer) -> str:
    """Free text that may quote a customer's values (a build error, say) as this viewer may see it."""
    return text if can_see(viewer) else scrub_text(text)


# --- the access log ---------------------------------------------------------------------------------


def record_unmasked(
    *, viewer: Viewer, kind: str, customer: Any = None, rows: int = 0, what: str = ""
) -> None:
    """Log one read of unmasked personal values (only for viewers who get them unmasked)."""
    if not can_see(viewer):
        return
    from privacy.models import UnmaskedAccess

    UnmaskedAccess.objects.create(
        user=viewer if getattr(viewer, "pk", None) else None,
        kind=kind,
        customer_id=getattr(customer, "pk", customer),
        rows=rows,
        what=what[:300],
    )


# --- caching ----------------------------------------------------------------------------------------

# Pages and endpoints that can show personal values unmasked (customer pages, member lists, exports,
# report files, the person's requests, /api/v1/me/): answered with `Cache-Control: no-store`, so no
# browser or proxy keeps a copy. A prefix covers every path below it, new ones included.
NO_STORE_PREFIXES = (
    "/customers/",
    "/privacy/",
    "/api/v1/customers/",
    "/api/v1/tags/",
    "/api/v1/privacy/",
    "/api/v1/me/",
    "/api/v1/reports/",
    "/dashboards/reports/",
)


def needs_no_store(path: str) -> bool:
    return path.startswith(NO_STORE_PREFIXES)
