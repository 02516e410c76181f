"""`resolve_identities`: the connected components of an existing base, previewed and then merged."""

import io

import pytest
from django.core.management import call_command

from crm_tags.identity.batch import resolve_identities
from crm_tags.models import Customer, CustomerIdentifier, CustomerMerge, MergeRule
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db


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


def test_a_dry_run_counts_and_samples_without_changing_anything(base):
    out = io.StringIO()
    call_command("resolve_identities", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "2 groups of one person, 3 profiles would merge" in text
    assert "sample: A + B + C" in text and "sample: G + H" in text
    assert Customer.objects.count() == 8 and not CustomerIdentifier.objects.exists()


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


def test_a_second_run_finds_nothing_more(base):
    resolve_identities()
    again = resolve_identities(dry_run=True)
    assert again.groups == 0 and again.profiles_to_merge == 0


def test_a_merge_past_a_limit_is_refused_and_counted(base):
    MergeRule.objects.filter(kind__slug="phone").update(max_per_profile=1)
    report = resolve_identities()
    assert report.refused >= 1
    held = CustomerIdentifier.objects.filter(kind="phone").values_list("customer_id", flat=True)
    assert len(held) == len(set(held))


def test_a_bad_batch_size_is_refused_with_a_message(base):
    with pytest.raises(Exception, match="batch-size must be at least 1"):
        call_command("resolve_identities", "--batch-size", "0")


def test_only_the_groups_of_given_customers_merge(base):
    g = Customer.objects.get(external_id="G")
    report = resolve_identities(only={g.pk})
    assert report.merged == 1
    assert sorted(CustomerMerge.objects.values_list("merged_external_id", flat=True)) == ["H"]
    assert Customer.objects.filter(external_id__in=["B", "C"]).count() == 2
