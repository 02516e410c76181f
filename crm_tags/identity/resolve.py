"""Resolving a row's identifiers to one profile: the profiles that hold any of them through a merging kind
merge into the oldest (unless a kind would pass its limit per profile: reported, as Segment does), and
the identifiers nobody holds yet join it (within the limits). Imports and the API call this."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from crm_tags.identity.merge import (
    MergeRefused,
    customers_merge,
    external_id_identifier_ensure,
    identifier_counts,
    tags_rebuild_after_merge,
)
from crm_tags.identity.normalise import EXTERNAL_ID, IdentifierInvalid
from crm_tags.identity.rules import IdentityRules, identifier_parse, identity_rules
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge


@dataclass
class Resolution:
    """The profile the identifiers resolve to (None: nobody holds any), the merges it took, the
    identifiers it gained, and those left out with the reason."""

    customer: Customer | None = None
    merges: list[CustomerMerge] = field(default_factory=list)
    attached: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)


def identifiers_parse(raw: Any, rules: IdentityRules) -> list[tuple[str, str]]:
    """A request's `identifiers` list, normalised and without duplicates (IdentifierInvalid names the
    position and what is wrong)."""
    if not isinstance(raw, list) or not raw:
        raise IdentifierInvalid("identifiers", _("Give a non-empty list of {kind, value} objects."))
    parsed = [identifier_parse(item, rules, position=i) for i, item in enumerate(raw)]
    return list(dict.fromkeys(parsed))


def _oldest_first(customers: Iterable[Customer]) -> list[Customer]:
    return sorted(customers, key=lambda c: (c.created_at, c.pk))


@transaction.atomic
def identifiers_resolve(
    *,
    identifiers: list[tuple[str, str]],
    by: User | None,
    source: str = "resolve",
    rules: IdentityRules | None = None,
    attach: bool = True,
    rebuild: bool = True,
) -> Resolution:
    """Resolve normalised (kind, value) pairs to one profile, merging the profiles they link."""
    rules = rules or identity_rules()
    result = Resolution()
    wanted = []
    for kind, value in identifiers:
        if rules.is_blocked(kind, value):
            result.rejected.append({"kind": kind, "value": value, "reason": "blocked"})
        else:
            wanted.append((kind, value))
    held = _holders(wanted)
    merging = [pair for pair in wanted if rules.merges(pair[0])]
    # a row links through its merging identifiers; one with none of them is looked up by the others
    owners = {held[pair] for pair in merging if pair in held} if merging else set(held.values())
    if not owners:
        return result
    profiles = _oldest_first(Customer.objects.filter(pk__in=owners))
    target = profiles[0]
    if merging:
        for other in profiles[1:]:
            try:
                result.merges.append(
                    customers_merge(
                        survivor=target, loser=other, by=by, source=source, rules=rules, rebuild=False
                    )
                )
            except MergeRefused as exc:
                result.rejected.append({"kind": "profile", "value": other.external_id, "reason": str(exc)})
    result.customer = target
    if attach:
        _attach(target, [pair for pair in wanted if pair not in held], rules, result)
    if rebuild and result.merges:
        tags_rebuild_after_merge()
    return result


def _holders(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Who holds each pair (rows locked); a profile's own external id counts even before it is stored."""
    if not pairs:
        return {}
    lookup = CustomerIdentifier.objects.none()
    for kind, value in pairs:
        lookup = lookup | CustomerIdentifier.objects.filter(kind=kind, value=value)
    held = {(i.kind, i.value): i.customer_id for i in lookup.select_for_update(of=("self",))}
    missing = [value for kind, value in pairs if kind == EXTERNAL_ID and (kind, value) not in held]
    for customer in Customer.objects.filter(external_id__in=missing):
        external_id_identifier_ensure(customer)
        held[(EXTERNAL_ID, customer.external_id)] = customer.pk
    return held


@transaction.atomic
def profile_resolve_or_create(
    *, identifiers: list[tuple[str, str]], external_id: str, by: User | None, source: str = "import"
) -> Resolution:
    """The profile of a row (an import's, say): resolved through its identifiers, or a new profile with
    this external id that takes them when nobody holds any."""
    rules = identity_rules()
    identifiers = list(dict.fromkeys([*identifiers, (EXTERNAL_ID, external_id)]))
    result = identifiers_resolve(identifiers=identifiers, by=by, source=source, rules=rules)
    if result.customer is None:
        customer = Customer.objects.create(external_id=external_id)
        external_id_identifier_ensure(customer)
        result.customer = customer
        fresh = [pair for pair in identifiers if not rules.is_blocked(*pair)]
        _attach(customer, [pair for pair in fresh if pair not in _holders(fresh)], rules, result)
    return result


def _attach(
    customer: Customer, pairs: list[tuple[str, str]], rules: IdentityRules, result: Resolution
) -> None:
    """New identifiers join the profile while each kind stays within its limit."""
    counts: Counter = identifier_counts(customer.pk)
    for kind, value in pairs:
        if rules.over_limit([(kind, counts[kind] + 1)]):
            result.rejected.append({"kind": kind, "value": value, "reason": "limit"})
            continue
        _row, created = CustomerIdentifier.objects.get_or_create(
            kind=kind, value=value, defaults={"customer": customer}
        )
        if created:
            counts[kind] += 1
            result.attached.append((kind, value))
