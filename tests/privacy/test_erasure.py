"""Erasing a person: after the job no table of our apps holds their e-mail, phone, name or external id;
dashboards and campaign figures are what they were; tags lose them with an `erased` entry; the
anonymous surrogate keeps their events and never enters a tag again; it is all or nothing."""

import datetime as dt
import io
import json

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection

from accounts.services import audit_record
from analytics import customer_figures
from analytics.filters import DashboardFilters
from campaigns import attribution
from campaigns import selectors as campaign_selectors
from campaigns import services as campaign_services
from crm_tags import importers
from crm_tags.models import (
    Customer,
    CustomerEventTotal,
    Event,
    EventRank,
    Tag,
    TagMembership,
    TagMembershipChange,
)
from crm_tags.selectors import customer_get_for_user
from privacy.models import Consent, ConsentChange, PrivacyRequest, UnmaskedAccess
from tests.crm_tags import factories
from tests.crm_tags.ranks_reference import recounted_ranks, stored_ranks
from tests.privacy import rights_factories as rf
from tests.privacy.conftest import PLANTED_EMAIL, PLANTED_NAME, PLANTED_PHONE

pytestmark = pytest.mark.django_db

OUR_APPS = (
    "accounts",
    "tickets",
    "crm_tags",
    "campaigns",
    "analytics",
    "knowledge_base",
    "privacy",
    "journeys",
)
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")
SIGNUP = dt.datetime(2026, 10, 3, 9, tzinfo=dt.UTC)


@pytest.fixture
def person(planted, manager, django_capture_on_commit_callbacks):
    """The planted person with a history everywhere, seen unmasked once, named in an audit entry, with a
    done export on disk."""
    planted.signup_at = SIGNUP
    planted.source_channel = "wechat"
    planted.attributes = {"wechat_openid": "oPLANTED-openid", "vip_level": "gold"}
    planted.save()
    made = rf.world(planted, manager, django_capture_on_commit_callbacks)
    customer_get_for_user(user=manager, external_id="PLANTED1")  # an unmasked read: the access log names them
    audit_record(
        actor=manager,
        action="crm.customer_note",
        obj=planted,
        changes={"email": [PLANTED_EMAIL, None], "note": f"called {PLANTED_PHONE} about PLANTED1"},
    )
    made["export"] = rf.filed("export", planted, manager, django_capture_on_commit_callbacks)
    return planted, made


def _text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema "
            "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type = ANY(%s) "
            "AND c.table_name LIKE ANY(%s) ORDER BY 1, 2",
            [list(TEXT_TYPES), [f"{app}\\_%" for app in OUR_APPS]],
        )
        return cursor.fetchall()


def _where_found(value: str) -> list[tuple[str, str]]:
    """Every (table, column) of our apps whose text holds the value (case-insensitive)."""
    pattern = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = []
    with connection.cursor() as cursor:
        for table, column in _text_columns():
            cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s', [pattern])  # noqa: S608
            if cursor.fetchone()[0]:
                found.append((table, column))
    return found


def _pending_bodies(customer) -> None:
    from django.utils import timezone

    from journeys.activation_tables import SyncBatch, SyncRun
    from journeys.models import Destination, WebhookRequest

    destination = Destination.objects.create(name="crm", kind="webhook", url="http://127.0.0.1:9/hook")
    quoted = json.dumps({"external_id": customer.external_id, "email": PLANTED_EMAIL, "phone": PLANTED_PHONE})
    WebhookRequest.objects.create(
        destination=destination, idempotency_key="j-1", body=quoted, next_attempt_at=timezone.now()
    )
    run = SyncRun.objects.create(
        destination=destination, audience="tag:x", audience_label="x", mode="snapshot"
    )
    SyncBatch.objects.create(run=run, number=1, idempotency_key="sync-1-1", body=quoted, items=1)


def _enrolled(customer, by) -> None:
    """The person enrolled in a journey, with a contact counted."""
    from journeys.models import ContactCount, Enrolment
    from tests.journeys import factories as journey_factories

    journey = journey_factories.journey(by, tag=journey_factories.manual_tag(), steps=[{"wait": {"days": 3}}])
    Enrolment.objects.create(
        journey=journey,
        version=journey.versions.order_by("-number").first(),
        customer=customer,
        trigger_ref="t",
        entered_at=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        next_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )
    ContactCount.objects.create(customer=customer, channel="email", day=dt.date(2026, 12, 1), count=1)


def _figures(campaign) -> dict:
    local = DashboardFilters(
        date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 11, 30), tz=settings.TIME_ZONE
    )
    utc = DashboardFilters(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 11, 30), tz="UTC")
    figures = {}
    for name, filters in (("local", local), ("utc", utc)):
        kpis = {t["key"]: t["value"] for t in customer_figures.kpis(filters, staff=True)["tiles"]}
        figures[name] = {
            "customers": kpis["customers"],
            "signups": kpis["signups"],
            "tags": kpis["tags"],
            "tag_sizes": customer_figures.tag_sizes(filters, staff=True),
            "entered_exited": customer_figures.entered_exited(filters, staff=True),
            "cohorts": {
                k: v for k, v in customer_figures.cohorts(filters, staff=True).items() if k != "orders_as_of"
            },
        }
    figures["attribution"] = [attribution.attribute(campaign=campaign, model=m) for m in attribution.MODELS]
    figures["campaign"] = campaign_selectors.campaign_summary(campaign=campaign, by_day=True)
    return figures


def _memberships_tile() -> int:
    filters = DashboardFilters(date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 11, 30))
    return {t["key"]: t["value"] for t in customer_figures.kpis(filters, staff=True)["tiles"]}["memberships"]


def _surrogate() -> Customer:
    return Customer.objects.get(external_id__startswith="anon-")


# --- the acceptance test ------------------------------------------------------------------------------


def test_after_erasure_no_table_holds_the_persons_values(person, manager, django_capture_on_commit_callbacks):
    # given the person's values are stored in many tables of our apps
    planted, made = person
    # (and an event whose free columns quote the e-mail)
    importers.import_events(
        io.StringIO(
            "customer_external_id,event_type,occurred_at,amount,channel,contact\n"
            f"PLANTED1,signup,2026-10-03T09:00:00+00:00,,web,{PLANTED_EMAIL.upper()}\n"
        )
    )
    # (and request bodies waiting for a journey's webhook and an audience sync, from a template and a
    # destination that send the e-mail and phone)
    _pending_bodies(planted)
    # (and enrolled in a journey, contacted once by it)
    _enrolled(planted, manager)
    # (and a rule whose literals name the person, saved by someone allowed to)
    factories.rule_tag(
        "this-person",
        {
            "any": [
                {"attr": "email", "op": "in", "value": [PLANTED_EMAIL, "else@example.com"]},
                {"attr": "phone", "op": "=", "value": PLANTED_PHONE},
            ]
        },
        by=manager,
    )
    values = (PLANTED_EMAIL, PLANTED_PHONE, PLANTED_NAME, "PLANTED1", "oPLANTED-openid")
    assert all(_where_found(v) for v in values)  # the search finds them before
    # when the person is erased
    req = rf.erased(planted, manager, django_capture_on_commit_callbacks)
    rf.check_deferred_keys()
    # then none of those values is left in any text or JSON column of any table of our apps
    assert req.status == "done", req.error
    assert {value: _where_found(value) for value in values} == {value: [] for value in values}
    from journeys.models import ContactCount, Enrolment

    assert Enrolment.objects.filter(customer=_surrogate()).count() == 1
    assert ContactCount.objects.filter(customer=_surrogate()).count() == 1
    assert Event.objects.get(customer=_surrogate(), event_type="signup").properties == {"contact": "[erased]"}
    # and the export file written before is gone from the disk
    assert not default_storage.exists(made["export"].file)


def test_the_report_counts_what_was_removed_and_holds_no_value(
    person, manager, django_capture_on_commit_callbacks
):
    planted, _made = person
    req = rf.erased(planted, manager, django_capture_on_commit_callbacks)
    assert req.report["events"] == 9
    assert req.report["tag_memberships"] == 2
    assert req.report["touchpoints"] == 2 and req.report["conversions"] == 1
    assert req.report["consents"] == 1 and req.report["consent_changes"] == 2
    assert req.report["access_log"] >= 1 and req.report["audit_entries"] >= 1
    assert req.report["export_files"] == 1 and req.report["requests"] == 2
    assert all(isinstance(v, int) for v in req.report.values())
    assert (req.subject, req.customer_id) == ("", None)
    assert PrivacyRequest.objects.get(pk=person[1]["export"].pk).subject == ""


def test_dashboards_and_campaign_figures_are_the_same_after(
    person, manager, django_capture_on_commit_callbacks
):
    # given the figures with the person
    planted, made = person
    before = _figures(made["campaign"])
    members_before = _memberships_tile()
    # when the person is erased
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    # then every figure is the same (the surrogate carries the person's events, orders and journeys) ...
    after = _figures(made["campaign"])
    assert json.dumps(after, sort_keys=True, default=str) == json.dumps(before, sort_keys=True, default=str)
    assert before["local"]["cohorts"]["sizes"] and before["attribution"][0]["channels"]
    # ... but the tags' member counts, which lost the person
    assert _memberships_tile() == members_before - 2


def test_tags_lose_the_person_with_an_erased_entry_and_keep_their_history(
    person, manager, django_capture_on_commit_callbacks
):
    planted, made = person
    counts = {tag.pk: tag.members_count for tag in made["tags"]}
    history = TagMembershipChange.objects.filter(customer=planted).count()
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    surrogate = _surrogate()
    for tag in made["tags"]:
        tag.refresh_from_db()
        assert tag.members_count == counts[tag.pk] - 1 == TagMembership.objects.filter(tag=tag).count()
    assert not TagMembership.objects.filter(customer=surrogate).exists()
    erased = TagMembershipChange.objects.filter(customer=surrogate, change="erased")
    assert sorted(erased.values_list("tag_id", flat=True)) == sorted(counts)
    assert TagMembershipChange.objects.filter(customer=surrogate).exclude(change="erased").count() == history


def test_the_surrogate_never_enters_a_tag_again(person, manager, django_capture_on_commit_callbacks):
    planted, made = person
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    surrogate = _surrogate()
    assert set(Consent.objects.filter(customer=surrogate).values_list("purpose", "state", "source")) == {
        (purpose, "withdrawn", "erased")
        for purpose in ("marketing_email", "marketing_sms", "marketing_push", "personalisation", "analytics")
    }
    # when the tags are built again (the surrogate still matches both rules)
    from crm_tags import services as crm_services

    with django_capture_on_commit_callbacks(execute=True):
        for tag in made["tags"]:
            crm_services.tag_publish(
                tag=Tag.objects.get(pk=tag.pk), version_number=1, rollout_percent=100, by=None
            )
    # then it is in none of them
    assert not TagMembership.objects.filter(customer=surrogate).exists()
    assert TagMembership.objects.filter(customer=made["bystander"]).count() == 2


def test_the_surrogate_keeps_events_totals_and_ranks_exact(
    person, manager, django_capture_on_commit_callbacks
):
    planted, _made = person
    events = list(
        Event.objects.filter(customer=planted).order_by("id").values_list("id", "event_type", "occurred_at")
    )
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    surrogate = _surrogate()
    assert (
        list(
            Event.objects.filter(customer=surrogate)
            .order_by("id")
            .values_list("id", "event_type", "occurred_at")
        )
        == events
    )
    assert _totals(surrogate) == _fresh_totals(surrogate)
    assert stored_ranks() == recounted_ranks() and EventRank.objects.filter(customer=surrogate).exists()
    assert (surrogate.name, surrogate.email, surrogate.phone, surrogate.birth_date) == ("", None, None, None)
    assert (surrogate.city, surrogate.signup_at, surrogate.source_channel) == ("Shanghai", SIGNUP, "wechat")
    assert surrogate.attributes == {"vip_level": "gold"}
    assert len(surrogate.external_id) == len("anon-") + 32


def test_the_consent_and_access_log_of_the_person_are_gone_or_unlinked(
    person, manager, django_capture_on_commit_callbacks
):
    planted, _made = person
    seen = UnmaskedAccess.objects.filter(customer=planted).count()
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    assert not Consent.objects.filter(customer_id=planted.pk).exists()
    assert not ConsentChange.objects.filter(customer_id=planted.pk).exists()
    assert not UnmaskedAccess.objects.filter(customer_id=planted.pk).exists()
    assert UnmaskedAccess.objects.filter(customer=None, what="").count() >= seen >= 1


def test_the_customer_count_stays_exact(person, manager, django_capture_on_commit_callbacks):
    planted, _made = person
    before = Customer.objects.count()
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    with connection.cursor() as cursor:
        cursor.execute("SELECT customers FROM crm_tags_customercount")
        counted = cursor.fetchone()[0]
    assert counted == Customer.objects.count() == before
    assert not Customer.objects.filter(pk=planted.pk).exists()


def test_a_person_imported_again_is_a_new_person(person, manager, django_capture_on_commit_callbacks):
    planted, _made = person
    rf.erased(planted, manager, django_capture_on_commit_callbacks)
    importers.import_customers(
        io.StringIO(
            "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
            f"PLANTED1,{PLANTED_NAME},{PLANTED_EMAIL},{PLANTED_PHONE},Shanghai,,,,\n"
        )
    )
    again = Customer.objects.get(external_id="PLANTED1")
    assert again.pk != planted.pk
    assert not Event.objects.filter(customer=again).exists()
    assert not TagMembershipChange.objects.filter(customer=again).exists()
    assert not Consent.objects.filter(customer=again).exists()
    assert not PrivacyRequest.objects.filter(subject="PLANTED1").exists()


# --- approval and atomicity ------------------------------------------------------------------------


def test_an_erasure_does_nothing_until_approved(person, manager, django_capture_on_commit_callbacks):
    planted, _made = person
    req = rf.filed("erase", planted, manager, django_capture_on_commit_callbacks)
    assert req.status == "pending_approval"
    assert Customer.objects.filter(pk=planted.pk).exists()
    assert not Customer.objects.filter(external_id__startswith="anon-").exists()


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_requesters_and_agents_may_not_approve(
    request, person, manager, who, django_capture_on_commit_callbacks
):
    from django.core.exceptions import PermissionDenied

    from privacy import rights

    planted, _made = person
    req = rf.filed("erase", planted, manager, django_capture_on_commit_callbacks)
    with pytest.raises(PermissionDenied):
        rights.request_approve(request=req, by=request.getfixturevalue(who))
    req.refresh_from_db()
    assert req.status == "pending_approval"


def test_a_failing_step_erases_nothing_and_fails_the_request(
    person, manager, monkeypatch, django_capture_on_commit_callbacks
):
    planted, made = person

    def broken(old: str, new: str) -> dict:
        raise RuntimeError(f"touchpoints of {PLANTED_EMAIL} locked")

    monkeypatch.setattr(campaign_services, "customer_references_pseudonymise", broken)
    req = rf.erased(planted, manager, django_capture_on_commit_callbacks)
    assert req.status == "failed" and PLANTED_EMAIL not in req.error
    planted.refresh_from_db()
    assert planted.email == PLANTED_EMAIL and req.subject == "PLANTED1"
    assert Event.objects.filter(customer=planted).count() == 9
    assert TagMembership.objects.filter(customer=planted).count() == 2
    assert not Customer.objects.filter(external_id__startswith="anon-").exists()
    assert default_storage.exists(made["export"].file)


def test_a_second_erasure_of_the_same_person_fails_cleanly(
    person, manager, django_capture_on_commit_callbacks
):
    planted, _made = person
    first = rf.filed("erase", planted, manager, django_capture_on_commit_callbacks)
    second = rf.filed("erase", planted, manager, django_capture_on_commit_callbacks)
    from privacy import rights

    with django_capture_on_commit_callbacks(execute=True):
        rights.request_approve(request=first, by=manager)
    with django_capture_on_commit_callbacks(execute=True):
        rights.request_approve(request=second, by=manager)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("done", "failed")
    assert second.error == "The customer no longer exists." and second.subject == ""


# --- helpers -------------------------------------------------------------------------------------------


def _totals(customer) -> list[tuple]:
    return sorted(
        CustomerEventTotal.objects.filter(customer=customer).values_list(
            "event_type",
            "events",
            "amount_count",
            "amount_sum",
            "amount_min",
            "amount_max",
            "first_at",
            "last_at",
        )
    )


def _fresh_totals(customer) -> list[tuple]:
    from django.db.models import Count, Max, Min, Sum

    rows = (
        Event.objects.filter(customer=customer)
        .values("event_type")
        .annotate(
            n=Count("id"),
            ac=Count("amount"),
            s=Sum("amount"),
            mn=Min("amount"),
            mx=Max("amount"),
            f=Min("occurred_at"),
            l=Max("occurred_at"),
        )
    )
    return sorted((r["event_type"], r["n"], r["ac"], r["s"], r["mn"], r["mx"], r["f"], r["l"]) for r in rows)


def test_the_erasure_is_set_based_its_queries_do_not_grow_with_the_persons_rows(
    manager, django_capture_on_commit_callbacks
):
    from django.test.utils import CaptureQueriesContext

    from tests.crm_tags import factories

    def erase_counting(events: int) -> int:
        person = factories.customer()
        rf.history_for(person, days=events, orders=events)
        req = rf.filed("erase", person, manager, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=False):
            from privacy import rights

            rights.request_approve(request=req, by=manager)
        with CaptureQueriesContext(connection) as captured:
            rights.request_erase_run(request_id=req.pk)
        req.refresh_from_db()
        assert req.status == "done" and req.report["events"] == 2 * events
        return len(captured.captured_queries)

    erase_counting(1)  # warms what is cached (personal attribute keys)
    assert erase_counting(3) == erase_counting(40)


def test_the_audit_trail_still_verifies_with_the_erased_entries_marked_redacted(
    person, manager, django_capture_on_commit_callbacks
):
    # given the audit trail sealed as it is written (a test's transaction never commits)
    from accounts.audit_chain import audit_chain_verify
    from accounts.models import AuditEntry

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS accounts_audit_seal IMMEDIATE")
    # when the person is erased
    req = rf.erased(person[0], manager, django_capture_on_commit_callbacks)
    # then the entries that held their values are marked redacted by the request, and the chain holds
    redacted = AuditEntry.objects.filter(redacted_by=f"privacy_request:{req.pk}")
    assert redacted.count() == req.report["audit_entries"] >= 1
    report = audit_chain_verify()
    assert report.ok, report.broken
    assert sorted(report.redacted[f"privacy_request:{req.pk}"]) == sorted(
        redacted.values_list("seq", flat=True)
    )
