"""`resolve_identities`: the connected components of an existing base, previewed and then merged."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tags.identity import IdentifierInvalid, identity_rules, normalise
from crm_tags.identity.batch import resolve_identities, triples_stage
from crm_tags.identity.normalise import normalise_phone
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, MergeRule
from tests.crm_tags import factories


@pytest.fixture
def base(db):
    # A-B share an e-mail (different case), B-C a phone (different format): one person; D alone;
    # E and F share only the blocked test@test.com; G and H share a member number in attributes
    factories.customer(external_id="A", email="Zhang@Example.com", phone="13811110001")
    factories.customer(external_id="B", email=" zhang@example.com ", phone="13811110002")
    factories.customer(external_id="C", email="c@example.com", phone="+86 138-1111-0002")
    factories.customer(external_id="D", email="d@example.com", phone="13811110004")
    factories.customer(external_id="E", email="test@test.com", phone="13811110005")
    factories.customer(external_id="F", email="TEST@test.com", phone="13811110006")
    factories.customer(external_id="G", email=None, phone=None, attributes={"member_no": "M9"})
    factories.customer(external_id="H", email=None, phone=None, attributes={"member_no": "M9"})


@pytest.mark.django_db
def test_a_dry_run_counts_and_samples_without_changing_anything(base):
    out = io.StringIO()
    call_command("resolve_identities", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "2 groups of one person, 3 profiles would merge" in text
    assert "sample: A + B + C" in text and "sample: G + H" in text
    assert Customer.objects.count() == 8 and not CustomerIdentifier.objects.exists()


@pytest.mark.django_db
def test_each_component_becomes_its_oldest_profile(base):
    out = io.StringIO()
    call_command("resolve_identities", "--batch-size", "1", stdout=out)
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A", "D", "E", "F", "G"]
    assert "merged 2 of 2 groups" in out.getvalue()
    assert set(CustomerMerge.objects.values_list("merged_external_id", flat=True)) == {"B", "C", "H"}
    a = Customer.objects.get(external_id="A")
    assert {("email", "zhang@example.com"), ("phone", "+8613811110001"), ("phone", "+8613811110002")} <= set(
        a.identifiers.values_list("kind", "value")
    )
    assert not CustomerIdentifier.objects.filter(value="test@test.com").exists()


@pytest.mark.django_db
def test_a_second_run_finds_nothing_more(base):
    resolve_identities()
    again = resolve_identities(dry_run=True)
    assert again.groups == 0 and again.profiles_to_merge == 0


@pytest.mark.django_db
def test_a_merge_past_a_limit_is_refused_and_counted(base):
    MergeRule.objects.filter(kind__slug="phone").update(max_per_profile=1)
    report = resolve_identities()
    assert report.refused >= 1
    held = CustomerIdentifier.objects.filter(kind="phone").values_list("customer_id", flat=True)
    assert len(held) == len(set(held))


@pytest.mark.django_db
def test_a_bad_batch_size_is_refused_with_a_message(base):
    with pytest.raises(Exception, match="batch-size must be at least 1"):
        call_command("resolve_identities", "--batch-size", "0")


@pytest.mark.django_db
def test_only_the_groups_of_given_customers_merge(base):
    g = Customer.objects.get(external_id="G")
    report = resolve_identities(only={g.pk})
    assert report.merged == 1
    assert sorted(CustomerMerge.objects.values_list("merged_external_id", flat=True)) == ["H"]
    assert Customer.objects.filter(external_id__in=["B", "C"]).count() == 2


# --- property: the batch finds exactly the components ------------------------------------------------

EMAILS = ["a@example.com", " A@Example.com", "b@example.com", "test@test.com", ""]
PHONES = ["13811110001", "+86 138-1111-0001", "8613811110002", "13800000000", "020 1234 5678", "no phone", ""]
MEMBERS = ["M1", "M2", "null", ""]
person = st.tuples(st.sampled_from(EMAILS), st.sampled_from(PHONES), st.sampled_from(MEMBERS), st.booleans())


def _reference_groups(rows: list[tuple[str, str, str, bool]]) -> set[frozenset[str]]:
    """Union-find over the rows by their normalised, unblocked values (one at a time, in Python)."""
    rules = identity_rules()
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, (email, phone, member, _stored) in enumerate(rows):
        for kind, raw in (("email", email), ("phone", phone), ("member_no", member)):
            try:
                value = normalise(kind, raw)
            except IdentifierInvalid:
                continue
            if rules.is_blocked(kind, value):
                continue
            if (kind, value) in first:
                parent[find(i)] = find(first[(kind, value)])
            else:
                first[(kind, value)] = i
    groups: dict[int, set[str]] = {}
    for i in range(len(rows)):
        groups.setdefault(find(i), set()).add(f"R{i}")
    return {frozenset(g) for g in groups.values()}


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(person, min_size=1, max_size=8))
def test_every_component_becomes_exactly_its_oldest_profile(rows):
    # given no limits, a base of rows with e-mails, phones and member numbers in any typed form
    CustomerMerge.objects.all().delete()
    CustomerIdentifier.objects.all().delete()
    Customer.objects.all().delete()
    MergeRule.objects.update(max_per_profile=None)
    rules = identity_rules()
    for i, (email, phone, member, stored) in enumerate(rows):
        c = factories.customer(
            external_id=f"R{i}", email=email, phone=phone, attributes={"member_no": member} if member else {}
        )
        # some rows' values stored as identifiers already (as an identity-aware import leaves them), once
        for kind, raw in (("email", email), ("phone", phone)):
            try:
                value = normalise(kind, raw)
            except IdentifierInvalid:
                continue
            if stored and not rules.is_blocked(kind, value):
                CustomerIdentifier.objects.get_or_create(kind=kind, value=value, defaults={"customer": c})
    # when the base is resolved in batches of one group
    resolve_identities(batch_size=1)
    # then each component of the reference is exactly one profile, its oldest row
    expected = _reference_groups(rows)
    survivors = set(Customer.objects.values_list("external_id", flat=True))
    assert survivors == {min(g, key=lambda x: int(x[1:])) for g in expected}
    merged_into = dict(CustomerMerge.objects.values_list("merged_external_id", "survivor__external_id"))
    found = {}
    for ext in (f"R{i}" for i in range(len(rows))):
        found.setdefault(merged_into.get(ext, ext), set()).add(ext)
    assert {frozenset(g) for g in found.values()} == expected


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raws=st.lists(
        st.one_of(
            st.sampled_from(PHONES),
            st.from_regex(r"(\+86|0086|86)?[ (-]?1[3-9]\d{2}[ )\t.-]?\d{4}[ -]?\d{4}[\n ]?", fullmatch=True),
            st.text(alphabet="0123456789+-() \u3000", max_size=16),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_phones_normalised_in_sql_equal_one_by_one(raws):
    # given customers with phones typed any way
    Customer.objects.all().delete()
    customers = [factories.customer(external_id=f"T{i}", phone=raw) for i, raw in enumerate(raws)]
    # when the base's triples are staged (plain mobiles normalised in SQL, the rest in Python)
    with connection.cursor() as cursor:
        triples_stage(cursor, identity_rules())
        cursor.execute("SELECT customer_id, value FROM crm_identity_triples WHERE kind = 'phone'")
        staged = dict(cursor.fetchall())
        cursor.execute("DROP TABLE crm_identity_triples")
    # then each is what normalise_phone makes of it (none where it is no number or blocked)
    rules = identity_rules()
    for c, raw in zip(customers, raws, strict=True):
        try:
            expected = normalise_phone(raw) if raw.strip() else None
        except IdentifierInvalid:
            expected = None
        if expected is not None and rules.is_blocked("phone", expected):
            expected = None
        assert staged.get(c.pk) == expected, raw
