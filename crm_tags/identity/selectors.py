"""Reads of identity for a viewer: a profile's identifiers (personal values as privacy.personal_data lets
this viewer see them), its merge history, and the possible duplicates a person may merge by hand."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils.translation import gettext_lazy

from accounts.models import User
from crm_tags.identity.normalise import EXTERNAL_ID
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge
from privacy import personal_data

DUPLICATES_SHOWN = 50
KIND_LABELS = {
    "email": gettext_lazy("E-mail"),
    "phone": gettext_lazy("Phone"),
    "wechat_openid": gettext_lazy("WeChat openid"),
    "wechat_unionid": gettext_lazy("WeChat unionid"),
    "member_no": gettext_lazy("Member number"),
    "external_id": gettext_lazy("External id"),
}


def identifier_value_for(kind: str, value: str, *, viewer: User | AnonymousUser | None) -> str:
    """One identifier's value for this viewer: external ids as they are, e-mail and phone masked as the
    customer's own fields are, every other kind (openid, member number, admin kinds) as an identifier."""
    if kind == EXTERNAL_ID or personal_data.can_see(viewer):
        return value
    if kind in personal_data.PERSONAL_FIELDS:
        return personal_data.mask(kind, value)
    return personal_data.mask_identifier(value)


def identifiers_shown(customer: Customer, *, viewer: User | AnonymousUser | None) -> list[dict[str, str]]:
    """The profile's identifiers `[{kind, value, label}]`, values fit for the viewer (label: the kind's
    name for pages; an admin's kind is named as the admin named it)."""
    from crm_tags.models import IdentifierKind

    rows = list(CustomerIdentifier.objects.filter(customer=customer).values_list("kind", "value"))
    # its own external id is one, stored or not (it resolves through the customer row)
    rows = sorted({*rows, (EXTERNAL_ID, customer.external_id)})
    custom = {kind for kind, _value in rows if kind not in KIND_LABELS}
    names = dict(IdentifierKind.objects.filter(slug__in=custom).values_list("slug", "name")) if custom else {}
    return [
        {
            "kind": kind,
            "value": identifier_value_for(kind, value, viewer=viewer),
            "label": KIND_LABELS.get(kind) or names.get(kind, kind),
        }
        for kind, value in rows
    ]


def merges_of(customer: Customer) -> list[CustomerMerge]:
    """Merges into the profile, newest first (undone ones too: the history)."""
    return list(
        CustomerMerge.objects.filter(survivor=customer)
        .select_related("by", "unmerged_by")
        .defer("snapshot", "moved")
        .order_by("-at", "-id")
    )


def identity_shown(customer: Customer, *, viewer: User | AnonymousUser | None) -> Customer:
    """Set `identifiers_shown`, `merged_from` and `merges_shown` on the customer for pages and the API."""
    merges = merges_of(customer)
    customer.identifiers_shown = identifiers_shown(customer, viewer=viewer)
    customer.merges_list = merges
    customer.merged_from = [m.merged_external_id for m in merges if m.unmerged_at is None]
    customer.merges_shown = [
        {"merge_id": m.pk, "from": m.merged_external_id, "at": m.at} for m in merges if m.unmerged_at is None
    ]
    return customer


@dataclass
class DuplicateGroup:
    """Profiles with the same name, city and birth date that share no identifier."""

    customers: list[Customer]


# Same name + city + birth date, and no (kind, value) shared between two of them (a shared one would
# have merged them already). Grouped in SQL; a page shows the first groups.
_DUPLICATES = """
    SELECT array_agg(c.id ORDER BY c.created_at, c.id)
    FROM crm_tags_customer c
    WHERE c.name <> '' AND c.city IS NOT NULL AND c.birth_date IS NOT NULL
    GROUP BY c.name, c.city, c.birth_date
    HAVING count(*) > 1
    ORDER BY min(c.created_at), min(c.id)
    LIMIT %s
"""


def possible_duplicates(
    *, viewer: User | AnonymousUser, limit: int = DUPLICATES_SHOWN
) -> list[DuplicateGroup]:
    """Groups of likely duplicates, each customer's personal values set for the viewer (`*_shown`)."""
    with connection.cursor() as cursor:
        cursor.execute(_DUPLICATES, [limit])
        groups = [row[0] for row in cursor.fetchall()]
    ids = [pk for group in groups for pk in group]
    by_id = {c.pk: c for c in Customer.objects.filter(pk__in=ids)}
    held: dict[int, set[tuple[str, str]]] = {}
    for cid, kind, value in CustomerIdentifier.objects.filter(customer_id__in=ids).values_list(
        "customer_id", "kind", "value"
    ):
        held.setdefault(cid, set()).add((kind, value))
    # contact fields not resolved yet count too: a shared e-mail or phone is no "possible" duplicate
    for customer in by_id.values():
        for kind, value in (
            ("email", (customer.email or "").strip().lower()),
            ("phone", customer.phone or ""),
        ):
            if value:
                held.setdefault(customer.pk, set()).add((f"raw:{kind}", value))
    from crm_tags import selectors

    selectors.customers_shown(list(by_id.values()), user=viewer, what="possible duplicates")
    result = []
    for group in groups:
        members = [by_id[pk] for pk in group if pk in by_id]
        if len(members) > 1 and not _share_identifier(members, held):
            result.append(DuplicateGroup(customers=members))
    return result


def _share_identifier(members: list[Customer], held: dict[int, set[Any]]) -> bool:
    seen: set[Any] = set()
    for customer in members:
        mine = held.get(customer.pk, set())
        if seen & mine:
            return True
        seen |= mine
    return False
