"""Operator commands: import_customers, import_events, rebuild_tags."""

import io

import pytest
from django.core.management import CommandError, call_command

from crm_tags.models import Customer, Event, Tag, TagMembership
from tests.crm_tags import factories

pytestmark = pytest.mark.django_db


def test_import_commands_load_files(tmp_path):
    customers = tmp_path / "c.csv"
    customers.write_text(
        "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel,vip\nK1,Kai,,,Beijing,m,,,web,yes\n"
    )
    events = tmp_path / "e.csv"
    events.write_text(
        "customer_external_id,event_type,occurred_at,amount,channel\nK1,order,2026-01-01T08:00:00Z,12,web\n"
    )
    out = io.StringIO()
    call_command("import_customers", str(customers), stdout=out)
    call_command("import_events", str(events), stdout=out)
    assert Customer.objects.get().attributes == {"vip": "yes"}
    assert Event.objects.get().amount == 12
    assert "1 events imported" in out.getvalue()


def test_import_command_reports_bad_rows(tmp_path):
    events = tmp_path / "e.csv"
    events.write_text(
        "customer_external_id,event_type,occurred_at,amount,channel\nGHOST,order,2026-01-01,1,web\n"
    )
    with pytest.raises(CommandError, match="row 2, column customer_external_id: Unknown customer GHOST"):
        call_command("import_events", str(events))


def test_rebuild_tags_sync_builds_one_tag():
    factories.customer(external_id="R1", city="Wuhan")
    tag = factories.rule_tag("wuhan", {"attr": "city", "op": "=", "value": "Wuhan"})
    Tag.objects.filter(pk=tag.pk).update(current_version=tag.versions.get(), rollout_percent=100)
    out = io.StringIO()
    call_command("rebuild_tags", "--tag", "wuhan", "--sync", stdout=out)
    assert "wuhan: done" in out.getvalue()
    assert TagMembership.objects.filter(tag=tag).count() == 1


def test_rebuild_tags_refuses_unknown_tag():
    with pytest.raises(CommandError):
        call_command("rebuild_tags", "--tag", "nope", "--sync")
