"""Identity resolution: normal forms, merge rules, resolving, merging and unmerging profiles."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import AuditEntry
from campaigns.models import Touchpoint
from crm_tags import services
from crm_tags.identity import (
    IdentifierInvalid,
    MergeRefused,
    UnmergeRefused,
    customers_merge,
    customers_unmerge,
    identifiers_parse,
    identifiers_resolve,
    identity_rules,
    normalise,
    profile_resolve_or_create,
)
from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    CustomerIdentifier,
    CustomerMerge,
    Event,
    MergeRule,
    Tag,
    TagMembership,
)
from privacy.models import Consent
from tests.campaigns.factories import campaign_make
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


# --- normal forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("email", "  Zhang.Wei@Example.COM ", "zhang.wei@example.com"),
        ("phone", "138 1234 5678", "+8613812345678"),
        ("phone", "+86 138-1234-5678", "+8613812345678"),
        ("phone", "8613812345678", "+8613812345678"),
        ("phone", "(021) 6123 4567", "+862161234567"),
        ("phone", "+1 650 253 0000", "+16502530000"),
        ("member_no", " M-001 ", "M-001"),
    ],
)
def test_values_are_normalised_per_kind(kind, raw, expected):
    assert normalise(kind, raw) == expected


def test_an_openid_is_scoped_by_its_app_id():
    assert normalise("wechat_openid", "oAbc", app_id="wx1") == "wx1:oAbc"
    assert normalise("wechat_openid", "wx1:oAbc") == "wx1:oAbc"


@pytest.mark.parametrize(
    ("kind", "raw", "word"),
    [
        ("email", "not-an-email", "e-mail"),
        ("phone", "abc", "phone"),
        ("wechat_openid", "oAbc", "app id"),
        ("email", "   ", "empty"),
        ("email", None, "text"),
    ],
)
def test_a_bad_value_is_refused_with_its_kind_named(kind, raw, word):
    with pytest.raises(IdentifierInvalid) as caught:
        normalise(kind, raw)
    assert caught.value.kind == kind and word in str(caught.value)


def test_an_unknown_kind_is_refused_naming_the_position():
    with pytest.raises(IdentifierInvalid) as caught:
        identifiers_parse(
            [{"kind": "email", "value": "a@b.cn"}, {"kind": "fax", "value": "1"}], identity_rules()
        )
    assert "fax" in str(caught.value) and "email" in str(caught.value)
    with pytest.raises(IdentifierInvalid) as caught:
        identifiers_parse([{"kind": "email"}], identity_rules())
    assert caught.value.kind == "identifiers[0]"


def test_the_default_block_list_refuses_junk_values():
    rules = identity_rules()
    assert rules.is_blocked("email", "test@test.com")
    assert rules.is_blocked("phone", normalise("phone", "13800000000"))
    assert rules.is_blocked("member_no", "NULL")
    assert not rules.is_blocked("email", "real@example.com")


# --- resolving -------------------------------------------------------------------------------------


def _with(customer: Customer, *pairs: tuple[str, str]) -> Customer:
    for kind, value in pairs:
        CustomerIdentifier.objects.create(customer=customer, kind=kind, value=value)
    return customer


def test_a_row_linking_two_profiles_merges_them_into_the_older():
    older = _with(factories.customer(external_id="OLD"), ("email", "a@example.com"))
    newer = _with(factories.customer(external_id="NEW"), ("phone", "+8613812345678"))

    result = identifiers_resolve(
        identifiers=[("email", "a@example.com"), ("phone", "+8613812345678"), ("member_no", "M1")], by=None
    )

    assert result.customer.pk == older.pk
    assert not Customer.objects.filter(pk=newer.pk).exists()
    assert set(CustomerIdentifier.objects.filter(customer=older).values_list("kind", "value")) == {
        ("email", "a@example.com"),
        ("phone", "+8613812345678"),
        ("member_no", "M1"),
        ("external_id", "NEW"),  # the merged profile's still resolves (the survivor's does through its row)
    }
    assert result.merges[0].merged_external_id == "NEW"


def test_nobody_holding_the_identifiers_resolves_to_nothing():
    assert identifiers_resolve(identifiers=[("email", "nobody@example.com")], by=None).customer is None


def test_a_blocked_value_links_nothing():
    first = _with(factories.customer(), ("email", "test@test.com"))
    second = _with(factories.customer(), ("phone", "+8613812345678"))
    result = identifiers_resolve(
        identifiers=[("email", "test@test.com"), ("phone", "+8613812345678")], by=None
    )
    assert result.customer.pk == second.pk
    assert Customer.objects.filter(pk=first.pk).exists()
    assert result.rejected == [{"kind": "email", "value": "test@test.com", "reason": "blocked"}]


def test_a_merge_past_a_kinds_limit_is_not_made_and_is_reported():
    MergeRule.objects.filter(kind__slug="member_no").update(max_per_profile=1)
    first = _with(factories.customer(), ("email", "a@example.com"), ("member_no", "M1"))
    second = _with(factories.customer(), ("phone", "+8613812345678"), ("member_no", "M2"))
    result = identifiers_resolve(
        identifiers=[("email", "a@example.com"), ("phone", "+8613812345678")], by=None
    )
    assert result.customer.pk == first.pk
    assert Customer.objects.filter(pk=second.pk).exists()
    assert result.rejected[0]["kind"] == "profile" and "member_no" in result.rejected[0]["reason"]


def test_a_new_identifier_past_its_limit_is_not_attached():
    MergeRule.objects.filter(kind__slug="email").update(max_per_profile=1)
    customer = _with(factories.customer(), ("phone", "+8613812345678"), ("email", "a@example.com"))
    result = identifiers_resolve(
        identifiers=[("phone", "+8613812345678"), ("email", "b@example.com")], by=None
    )
    assert result.rejected == [{"kind": "email", "value": "b@example.com", "reason": "limit"}]
    assert not CustomerIdentifier.objects.filter(value="b@example.com").exists()
    assert result.customer.pk == customer.pk


def test_a_kind_that_does_not_merge_only_looks_up():
    MergeRule.objects.filter(kind__slug="member_no").update(merges=False)
    first = _with(factories.customer(), ("member_no", "M1"))
    second = _with(factories.customer(), ("email", "a@example.com"))
    assert identifiers_resolve(identifiers=[("member_no", "M1")], by=None).customer.pk == first.pk
    result = identifiers_resolve(identifiers=[("member_no", "M1"), ("email", "a@example.com")], by=None)
    assert result.customer.pk == second.pk and Customer.objects.filter(pk=first.pk).exists()


def test_a_row_nobody_holds_creates_a_profile_with_its_identifiers():
    result = profile_resolve_or_create(identifiers=[("email", "x@example.com")], external_id="X1", by=None)
    assert result.customer.external_id == "X1"
    assert set(result.customer.identifiers.values_list("kind", "value")) == {
        ("email", "x@example.com"),
        ("external_id", "X1"),
    }


def test_an_existing_external_id_resolves_to_its_profile():
    customer = factories.customer(external_id="EXT9")
    result = profile_resolve_or_create(identifiers=[("email", "y@example.com")], external_id="EXT9", by=None)
    assert result.customer.pk == customer.pk and Customer.objects.count() == 1


# --- merge and unmerge -----------------------------------------------------------------------------


def _state() -> dict:
    """Everything a merge touches, as comparable values."""
    return {
        "customers": sorted(
            Customer.objects.values_list("pk", "external_id", "email", "created_at", "updated_at")
        ),
        "identifiers": sorted(CustomerIdentifier.objects.values_list("pk", "customer_id", "kind", "value")),
        "events": sorted(Event.objects.values_list("pk", "customer_id")),
        "totals": sorted(
            CustomerEventTotal.objects.values_list("customer_id", "event_type", "events", "amount_sum")
        ),
        "consent": sorted(Consent.objects.values_list("customer_id", "purpose", "state")),
        "memberships": sorted(TagMembership.objects.values_list("tag_id", "customer_id", "since")),
        "counts": sorted(Tag.objects.values_list("pk", "members_count")),
        "touchpoints": sorted(Touchpoint.objects.values_list("pk", "customer_external_id")),
    }


@pytest.fixture
def pair(manager):
    older = _with(factories.customer(external_id="A"), ("email", "a@example.com"))
    newer = _with(factories.customer(external_id="B"), ("phone", "+8613812345678"))
    factories.events([(older, "order", AT, Decimal("10")), (newer, "order", AT, Decimal("30"))])
    Consent.objects.create(customer=older, purpose="marketing_email", state="granted", at=AT)
    Consent.objects.create(customer=newer, purpose="marketing_email", state="withdrawn", at=AT)
    Consent.objects.create(customer=newer, purpose="analytics", state="granted", at=AT)
    return older, newer


def test_a_merge_moves_events_and_keeps_totals_exact(pair, manager):
    older, newer = pair
    customers_merge(survivor=older, loser=newer, by=manager)
    total = CustomerEventTotal.objects.get(customer=older, event_type="order")
    assert (total.events, total.amount_sum) == (2, Decimal("40"))
    assert Event.objects.filter(customer=older).count() == 2


def test_the_most_restrictive_consent_wins(pair, manager):
    older, newer = pair
    customers_merge(survivor=older, loser=newer, by=manager)
    assert dict(Consent.objects.filter(customer=older).values_list("purpose", "state")) == {
        "marketing_email": "withdrawn",
        "analytics": "granted",
    }


def test_campaign_touchpoints_follow_the_person(pair, manager):
    older, newer = pair
    campaign = campaign_make(owner=manager)
    touch = Touchpoint.objects.create(
        campaign=campaign, customer_external_id="B", channel="email", occurred_at=AT
    )
    merge = customers_merge(survivor=older, loser=newer, by=manager)
    touch.refresh_from_db()
    assert touch.customer_external_id == "A"
    customers_unmerge(survivor=older, merge_id=merge.pk, by=manager)
    touch.refresh_from_db()
    assert touch.customer_external_id == "B"


def _published(slug: str, definition: dict, capture) -> Tag:
    tag = factories.rule_tag(slug, definition)
    with capture(execute=True):
        services.tag_publish(tag=tag, version_number=1, rollout_percent=100, by=None)
    return tag


def test_unmerge_restores_both_profiles_exactly(pair, manager, django_capture_on_commit_callbacks):
    older, newer = pair
    _published(
        "buyers",
        {"event": "order", "agg": "count", "op": ">=", "value": 1},
        django_capture_on_commit_callbacks,
    )
    assert TagMembership.objects.count() == 2
    before = _state()

    merge = customers_merge(survivor=older, loser=newer, by=manager, rebuild=False)
    assert _state() != before
    customers_unmerge(survivor=older, merge_id=merge.pk, by=manager, rebuild=False)

    assert _state() == before


def test_merge_and_unmerge_are_audited(pair, manager):
    older, newer = pair
    merge = customers_merge(survivor=older, loser=newer, by=manager)
    customers_unmerge(survivor=older, merge_id=merge.pk, by=manager)
    actions = list(AuditEntry.objects.filter(actor=manager).values_list("action", flat=True))
    assert "crm.customer_merge" in actions and "crm.customer_unmerge" in actions


def test_tags_and_counts_follow_merges(manager, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    one = factories.customer(external_id="ONE")
    two = factories.customer(external_id="TWO")
    factories.events([(one, "order", AT, Decimal("1")), (two, "order", AT, Decimal("1"))])
    repeat = _published("repeat-buyers", {"event": "order", "agg": "count", "op": ">=", "value": 2}, capture)
    buyers = _published("buyers", {"event": "order", "agg": "count", "op": ">=", "value": 1}, capture)

    def counts() -> tuple[int, int]:
        return tuple(Tag.objects.get(pk=t.pk).members_count for t in (repeat, buyers))

    assert counts() == (0, 2)
    with capture(execute=True):
        merge = customers_merge(survivor=one, loser=two, by=manager)
    assert list(TagMembership.objects.filter(tag=repeat).values_list("customer_id", flat=True)) == [one.pk]
    assert counts() == (1, 1)

    with capture(execute=True):
        customers_unmerge(survivor=one, merge_id=merge.pk, by=manager)
    assert counts() == (0, 2)


def test_a_profile_cannot_merge_into_itself(manager):
    customer = factories.customer()
    with pytest.raises(MergeRefused):
        customers_merge(survivor=customer, loser=customer, by=manager)


def test_a_merge_cannot_be_undone_twice(pair, manager):
    older, newer = pair
    merge = customers_merge(survivor=older, loser=newer, by=manager)
    customers_unmerge(survivor=older, merge_id=merge.pk, by=manager)
    with pytest.raises(UnmergeRefused, match="already"):
        customers_unmerge(survivor=older, merge_id=merge.pk, by=manager)
    assert CustomerMerge.objects.get(pk=merge.pk).unmerged_by == manager


def test_a_kind_an_admin_adds_resolves_like_the_others():
    from crm_tags.models import IdentifierKind

    kind = IdentifierKind.objects.create(slug="loyalty_card", name="Loyalty card")
    MergeRule.objects.create(kind=kind, merges=True, max_per_profile=2)
    first = _with(factories.customer(), ("loyalty_card", "LC-1"))
    second = _with(factories.customer(), ("email", "a@example.com"))
    pairs = identifiers_parse(
        [{"kind": "loyalty_card", "value": " LC-1 "}, {"kind": "email", "value": "A@example.com"}],
        identity_rules(),
    )
    assert identifiers_resolve(identifiers=pairs, by=None).customer.pk == first.pk
    assert not Customer.objects.filter(pk=second.pk).exists()


def test_an_admin_manages_kinds_and_the_block_list(client_for, admin_user):
    # (the admin role's model rights are granted in accounts.roles; a superuser has them all)
    admin_user.is_superuser = True
    admin_user.save(update_fields=["is_superuser"])
    client = client_for(admin_user)
    assert client.get("/admin/crm_tags/identifierkind/").status_code == 200
    assert client.get("/admin/crm_tags/blockedidentifier/").status_code == 200


def test_someone_without_admin_rights_cannot_manage_kinds(client_for, manager):
    assert client_for(manager).get("/admin/crm_tags/identifierkind/").status_code in (302, 403)


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
def test_consent_history_and_unmasking_records_follow_the_person(pair, manager, bulk):
    # given a merged profile with consent history and a record of someone seeing it unmasked (tables
    # whose key to the customer has no reverse accessor)
    from django.db import connection

    from crm_tags.identity.bulk import customers_merge_bulk
    from privacy.consent import consent_set
    from privacy.models import ConsentChange, UnmaskedAccess

    older, newer = pair
    consent_set(customer=newer, states={"marketing_sms": "granted"}, source="form", by=manager)
    seen = UnmaskedAccess.objects.create(user=manager, kind="customer", customer=newer)
    history = set(ConsentChange.objects.filter(customer=newer).values_list("pk", flat=True))
    assert history
    # when it merges
    if bulk:
        customers_merge_bulk(pairs=[(older.pk, newer.pk)], by=manager)
        merge = CustomerMerge.objects.get()
    else:
        merge = customers_merge(survivor=older, loser=newer, by=manager, rebuild=False)
    # then its rows point at the survivor, and no key is left dangling at commit
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert set(ConsentChange.objects.filter(customer=older).values_list("pk", flat=True)) >= history
    seen.refresh_from_db()
    assert seen.customer_id == older.pk
    # and an unmerge gives them back
    restored = customers_unmerge(survivor=older, merge_id=merge.pk, by=manager, rebuild=False)
    assert set(ConsentChange.objects.filter(customer=restored).values_list("pk", flat=True)) == history
    seen.refresh_from_db()
    assert seen.customer_id == restored.pk
