"""Finding and replacing a person's values in stored text and JSON: whole values, never a part of a longer
identifier, short values only as a whole; the audit trail keeps its entries and other people's values."""

import pytest

from accounts.models import AuditEntry
from accounts.services import audit_entries_scrub, audit_record
from privacy.scrubbing import ERASED, Scrubber

EMAIL = "zhang.wei@example.com"


def test_long_values_go_wherever_they_stand_in_any_case():
    scrubber = Scrubber(["B1001", EMAIL])
    assert scrubber.text(f"called {EMAIL.upper()} about B1001.") == f"called {ERASED} about {ERASED}."


def test_a_longer_identifier_is_not_touched():
    scrubber = Scrubber(["B1001"])
    assert scrubber.text("B10010 and xB1001") == "B10010 and xB1001"


def test_short_values_go_only_as_a_whole():
    scrubber = Scrubber(["李娜", "C1"])
    assert scrubber.text("李娜") == ERASED
    assert scrubber.text("李娜娜 C10") == "李娜娜 C10"
    assert scrubber.json({"name": "李娜", "note": "C1 C12", "C1": 1}) == {
        "name": ERASED,
        "note": "C1 C12",
        ERASED: 1,
    }


def test_json_numbers_equal_to_a_value_go():
    assert Scrubber(["13912345678"]).json({"phone": 13912345678, "n": 3}) == {"phone": ERASED, "n": 3}


def test_patterns_find_the_candidates():
    scrubber = Scrubber(["100%_real", "李娜"])
    assert scrubber.text_patterns() == ["%100\\%\\_real%", "李娜"]
    assert scrubber.json_patterns() == ["%100\\%\\_real%", '%"李娜"%']


@pytest.mark.django_db
def test_audit_entries_of_the_person_lose_the_values_and_stay(manager):
    before = AuditEntry.objects.count()
    # given an entry about the customer quoting their e-mail, one named by their id, one about someone else
    own = audit_record(
        actor=manager,
        action="crm.note",
        object_type="crm_tags.customer",
        object_id=7,
        changes={"email": [EMAIL, None], "status": "vip"},
    )
    named = audit_record(actor=manager, action="x.y", object_type="x.thing", object_id="PLANTED9", changes={})
    other = audit_record(
        actor=manager,
        action="crm.note",
        object_type="crm_tags.customer",
        object_id=8,
        changes={"email": ["other@example.com", None]},
    )
    # when the person's values are scrubbed
    changed = audit_entries_scrub(values=["PLANTED9", EMAIL], objects=[("crm_tags.customer", 7)])
    # then their entries stay without the values, and the other person's entry is as it was
    assert changed == 2
    own.refresh_from_db()
    named.refresh_from_db()
    other.refresh_from_db()
    assert own.changes == {"email": [ERASED, None], "status": "vip"}
    assert (named.object_id, named.action) == (ERASED, "x.y")
    assert other.changes == {"email": ["other@example.com", None]}
    assert AuditEntry.objects.count() == before + 3
