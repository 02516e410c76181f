"""The person's rights: filing an export or erase request, approving an erasure, and the two jobs that
carry them out (a JSON file of everything we hold about the person; the erasure, in one transaction).

    req = request_file(kind="erase", customer_external_id="C00042", by=manager)   # pending approval
    request_approve(request=req, by=other_manager)                              # running; job queued

Neither the audit trail, nor the request's report, nor a log line holds a personal value: the request
names the person by its `customer` link and `subject` until the erasure clears both.
"""

import json
import logging
import os
import secrets
import tempfile
from collections.abc import Iterable
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_entries_scrub, audit_record, notify
from analytics import services as analytics_services
from campaigns import selectors as campaign_selectors
from campaigns import services as campaign_services
from crm_tags import erasure, portability
from journeys import services as journeys_services
from privacy import consent, permissions, personal_data
from privacy.models import Consent, ConsentChange, ConsentState, PrivacyRequest, Purpose, UnmaskedAccess
from privacy.scrubbing import Scrubber

log = logging.getLogger(__name__)

EXPORT_FOLDER = "privacy"
EXPORT_FORMAT = "martech-hub/personal-data-export/1"
ERASED_SOURCE = "erased"


class CustomerNotFound(Http404):
    """No customer has the external id a request names."""


class RequestKindInvalid(ValueError):
    """Not a kind of request (export, erase)."""


class RequestStateError(Exception):
    """The request is not in a state that allows this (approving an export, or an erasure twice)."""


class CustomerGone(Exception):
    """The request's customer was erased (or deleted) before the job ran."""


# --- filing and approving ----------------------------------------------------------------------------


@transaction.atomic
def request_file(*, kind: str, customer_external_id: str, by: User) -> PrivacyRequest:
    """File a person's request: an export starts at once (its job queued after commit), an erasure waits
    for a manager's approval. Due PRIVACY_REQUEST_DUE_DAYS after filing. Audited."""
    if not permissions.can_file_request(by):
        raise PermissionDenied(_("Only managers may file a personal data request."))
    if kind not in PrivacyRequest.Kind.values:
        raise RequestKindInvalid(kind)
    customer = portability.customer_by_external_id(external_id=customer_external_id)
    if customer is None:
        raise CustomerNotFound(_("No customer has this external id."))
    now = timezone.now()
    export = kind == PrivacyRequest.Kind.EXPORT
    req = PrivacyRequest.objects.create(
        kind=kind,
        status=PrivacyRequest.Status.RUNNING if export else PrivacyRequest.Status.PENDING_APPROVAL,
        customer=customer,
        subject=customer.external_id,
        requested_by=by,
        due_at=now + timedelta(days=settings.PRIVACY_REQUEST_DUE_DAYS),
    )
    audit_record(actor=by, action="privacy.request_file", obj=req, changes={"kind": kind})
    if export:
        _queue(req)
    log.info("privacy request %s (%s) filed by %s", req.pk, kind, by.pk)
    return req


@transaction.atomic
def request_approve(*, request: PrivacyRequest, by: User) -> PrivacyRequest:
    """Approve a pending erasure (any manager, its filer included): it runs, its job queued after commit.
    Audited. RequestStateError for an export or an erasure not pending approval."""
    if not permissions.can_approve_request(by):
        raise PermissionDenied(_("Only managers may approve an erasure."))
    req = PrivacyRequest.objects.select_for_update().get(pk=request.pk)
    if req.kind != PrivacyRequest.Kind.ERASE or req.status != PrivacyRequest.Status.PENDING_APPROVAL:
        raise RequestStateError(_("Only an erasure pending approval can be approved."))
    req.status = PrivacyRequest.Status.RUNNING
    req.approved_by = by
    req.approved_at = timezone.now()
    req.save(update_fields=["status", "approved_by", "approved_at"])
    audit_record(actor=by, action="privacy.request_approve", obj=req)
    _queue(req)
    return req


def _queue(req: PrivacyRequest) -> None:
    from privacy import tasks

    task = tasks.run_export if req.kind == PrivacyRequest.Kind.EXPORT else tasks.run_erasure
    transaction.on_commit(lambda: task.delay(req.pk))


def _running(request_id: int, kind: str) -> PrivacyRequest | None:
    """The request if it is (still) running; marks it started."""
    now = timezone.now()
    started = PrivacyRequest.objects.filter(
        pk=request_id, kind=kind, status=PrivacyRequest.Status.RUNNING
    ).update(started_at=now)
    if not started:
        log.info("privacy request %s is not running any more; skipped", request_id)
        return None
    return PrivacyRequest.objects.select_related("requested_by").get(pk=request_id)


def _finish(req: PrivacyRequest, *, status: str, report: dict[str, Any], error: str = "") -> None:
    """Status, report and error written, audited, the filer notified (in the caller's transaction)."""
    PrivacyRequest.objects.filter(pk=req.pk).update(
        status=status, report=report, error=error[:2000], finished_at=timezone.now()
    )
    req.refresh_from_db()
    done = status == PrivacyRequest.Status.DONE
    audit_record(
        actor=None,
        action="privacy.request_done" if done else "privacy.request_failed",
        obj=req,
        changes=report if done else {},
    )
    filer = req.requested_by
    if filer is None:
        return
    notify(
        recipients=[filer],
        kind="privacy.request_done" if done else "privacy.request_failed",
        verb=f"privacy.request_{status}",
        params={"id": req.pk, "kind": req.kind},
        url=reverse("privacy:request_detail", args=[req.pk]),
        email=False,
    )


def _failed(req: PrivacyRequest, exc: BaseException) -> PrivacyRequest:
    # the reason may quote a value (a database error): scrubbed before anyone reads it
    message = personal_data.scrub_text(str(exc)) or exc.__class__.__name__
    with transaction.atomic():
        _finish(req, status=PrivacyRequest.Status.FAILED, report={}, error=message)
    return req


# --- the export ----------------------------------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _write_array(out: IO[str], rows: Iterable[Any]) -> int:
    """A JSON array written one element at a time (never the whole list in memory)."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(_dump(row))
        count += 1
    out.write("\n]" if count else "]")
    return count


def _identifiers(customer: Any) -> dict[str, Any]:
    keys = personal_data.personal_attribute_keys()
    return {
        "external_id": customer.external_id,
        "email": customer.email,
        "phone": customer.phone,
        "attributes": {k: v for k, v in (customer.attributes or {}).items() if k in keys},
    }


def _consent_history(customer: Any) -> Iterable[dict[str, Any]]:
    rows = (
        ConsentChange.objects.filter(customer_id=customer.pk)
        .order_by("at", "id")
        .values("purpose", "old_state", "new_state", "source", "at")
    )
    return rows.iterator(chunk_size=2000)


def _write_bundle(out: IO[str], req: PrivacyRequest, customer: Any) -> dict[str, int]:
    """Everything we hold about the person, as one JSON object; returns the count per section."""
    counts: dict[str, int] = {}
    current = [
        {"purpose": purpose, **state}
        for purpose, state in consent.consent_for(customer)["purposes"].items()
        if state["state"] != ConsentState.UNKNOWN
    ]
    header = {
        "format": EXPORT_FORMAT,
        "request": req.pk,
        "generated_at": timezone.now(),
        "profile": portability.customer_profile(customer=customer),
        "identifiers": _identifiers(customer),
    }
    out.write(_dump(header)[:-1])  # left open: the streamed sections follow
    out.write(',\n"consent": {"current": ' + _dump(current) + ', "history": ')
    counts["consents"] = len(current)
    counts["consent_changes"] = _write_array(out, _consent_history(customer))
    out.write('},\n"events": ')
    counts["events"] = _write_array(out, portability.customer_events_stream(customer=customer))
    out.write(',\n"tags": {"memberships": ')
    counts["tag_memberships"] = _write_array(out, portability.customer_memberships(customer=customer))
    out.write(', "history": ')
    counts["tag_history"] = _write_array(out, portability.customer_tag_history(customer=customer))
    out.write('},\n"campaigns": {"touchpoints": ')
    external_id = customer.external_id
    touchpoints = campaign_selectors.customer_touchpoints(external_id=external_id).iterator(chunk_size=2000)
    counts["touchpoints"] = _write_array(
        out, ({"campaign": r.pop("campaign__code"), **r} for r in touchpoints)
    )
    out.write(', "conversions": ')
    conversions = campaign_selectors.customer_conversions(external_id=external_id).iterator(chunk_size=2000)
    counts["conversions"] = _write_array(
        out, ({"campaign": r.pop("campaign__code"), **r} for r in conversions)
    )
    out.write("}}\n")
    counts["profile"] = 1
    counts["identifiers"] = sum(1 for v in (customer.external_id, customer.email, customer.phone) if v) + len(
        header["identifiers"]["attributes"]
    )
    return counts


def _export_write(req: PrivacyRequest) -> tuple[str, dict[str, int]]:
    """Write the bundle to a temporary file from one snapshot of the database, then store it under an
    unguessable name; returns (stored name, counts)."""
    outermost = not connection.in_atomic_block
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as out:
        temp_path = out.name
        with transaction.atomic():
            if outermost:
                with connection.cursor() as cursor:
                    # every section from the same moment, whatever imports run meanwhile
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            customer = (
                portability.customer_for_export(customer_id=req.customer_id) if req.customer_id else None
            )
            if customer is None:
                raise CustomerGone(_("The customer no longer exists."))
            counts = _write_bundle(out, req, customer)
    try:
        counts["bytes"] = os.path.getsize(temp_path)
        with open(temp_path, "rb") as data:
            name = default_storage.save(f"{EXPORT_FOLDER}/{secrets.token_urlsafe(32)}.json", File(data))
    finally:
        os.unlink(temp_path)
    return name, counts


def request_export_run(*, request_id: int) -> PrivacyRequest | None:
    """The export job: the person's data written as one JSON file; done with counts per section, or
    failed with a scrubbed reason. None when the request is not a running export."""
    req = _running(request_id, PrivacyRequest.Kind.EXPORT)
    if req is None:
        return None
    try:
        name, counts = _export_write(req)
    except Exception as exc:  # noqa: BLE001 - any failure ends the request as failed, with its reason
        log.exception("privacy export %s failed", req.pk)
        return _failed(req, exc)
    with transaction.atomic():
        # still running, and the person not erased while the file was written
        kept = PrivacyRequest.objects.filter(
            pk=req.pk, status=PrivacyRequest.Status.RUNNING, customer__isnull=False
        ).update(file=name)
        if not kept:
            transaction.on_commit(lambda: default_storage.delete(name))
            req.refresh_from_db()
            if req.status == PrivacyRequest.Status.RUNNING:
                _finish(
                    req,
                    status=PrivacyRequest.Status.FAILED,
                    report={},
                    error=_("The customer was erased while the export was written."),
                )
            return req
        _finish(req, status=PrivacyRequest.Status.DONE, report=counts)
    log.info("privacy export %s done: %s", req.pk, counts)
    return req


# --- the erasure ---------------------------------------------------------------------------------------


def _personal_values(customer: Any) -> list[str]:
    """The person's values that must not survive anywhere: identifiers, contact values, name, personal
    attributes."""
    keys = personal_data.personal_attribute_keys()
    values = [customer.external_id, customer.email, customer.phone, customer.name]
    for key, value in (customer.attributes or {}).items():
        if key in keys and isinstance(value, (str, int)) and not isinstance(value, bool):
            values.append(str(value))
    return [v.strip() for v in values if v and str(v).strip()]


def _consent_erase(customer: Any, surrogate: Any) -> dict[str, int]:
    """The person's consent and its history go; the surrogate withdraws every purpose, so it never enters
    a computed tag, an audience or a channel export again."""
    changes, _by_model = ConsentChange.objects.filter(customer_id=customer.pk).delete()
    consents, _by_model = Consent.objects.filter(customer_id=customer.pk).delete()
    consent.consent_set(
        customer=surrogate,
        states={purpose: ConsentState.WITHDRAWN.value for purpose in Purpose.values},
        source=ERASED_SOURCE,
        by=None,
    )
    return {"consents": consents, "consent_changes": changes}


def _access_log_unlink(customer: Any) -> dict[str, int]:
    """Access-log rows of the person lose their link and what named them (the external id); who read how
    many rows when stays. Rows of lists and exports name no customer (through the customer index)."""
    return {
        "access_log": UnmaskedAccess.objects.filter(customer_id=customer.pk).update(customer=None, what="")
    }


def _request_ids(customer: Any) -> list[int]:
    return list(
        PrivacyRequest.objects.filter(
            Q(customer_id=customer.pk) | Q(subject=customer.external_id)
        ).values_list("pk", flat=True)
    )


def _requests_unlink(customer: Any, scrubber: Scrubber) -> tuple[int, list[str]]:
    """Every request about the person loses its subject, customer link and export file (deleted after
    commit); returns (requests, files)."""
    rows = list(
        PrivacyRequest.objects.select_for_update()
        .filter(Q(customer_id=customer.pk) | Q(subject=customer.external_id))
        .only("pk", "file", "error")
    )
    files = [row.file for row in rows if row.file]
    for row in rows:
        PrivacyRequest.objects.filter(pk=row.pk).update(
            subject="", customer=None, file="", error=scrubber.text(row.error)
        )
    return len(rows), files


def _erase(req: PrivacyRequest) -> dict[str, int] | None:
    """The erasure itself, in the caller's transaction; returns its report (None when not running)."""
    req = PrivacyRequest.objects.select_for_update().get(pk=req.pk)
    if req.status != PrivacyRequest.Status.RUNNING:
        return None
    customer = erasure.customer_lock(customer_id=req.customer_id) if req.customer_id else None
    if customer is None:
        raise CustomerGone(_("The customer no longer exists."))
    now = timezone.now()
    values = _personal_values(customer)
    scrubber = Scrubber(values)
    surrogate = erasure.surrogate_create(customer=customer, scrubber=scrubber)
    report = erasure.customer_records_move(customer=customer, surrogate=surrogate, at=now, scrubber=scrubber)
    report["rule_versions"] = erasure.rule_literals_scrub(scrubber=scrubber)
    report.update(
        campaign_services.customer_references_pseudonymise(customer.external_id, surrogate.external_id)
    )
    report["order_months"] = analytics_services.customer_order_months_reassign(
        old=customer.pk, new=surrogate.pk
    )
    report.update(_consent_erase(customer, surrogate))
    report.update(journeys_services.customer_erase(customer=customer, surrogate=surrogate, scrubber=scrubber))
    report.update(_access_log_unlink(customer))
    report["audit_entries"] = audit_entries_scrub(
        values=values,
        objects=[
            ("crm_tags.customer", customer.pk),
            *((PrivacyRequest._meta.label_lower, pk) for pk in _request_ids(customer)),
        ],
        reference=f"privacy_request:{req.pk}",
    )
    report["requests"], files = _requests_unlink(customer, scrubber)
    report["export_files"] = len(files)
    report["personal_fields"] = len(values)
    erasure.customer_delete(customer=customer)
    transaction.on_commit(lambda: [default_storage.delete(name) for name in files])
    _finish(req, status=PrivacyRequest.Status.DONE, report=report)
    return report


def request_erase_run(*, request_id: int) -> PrivacyRequest | None:
    """The erase job: everything in one transaction (all of it or nothing); done with a report of counts,
    or failed with a scrubbed reason. None when the request is not a running erasure."""
    req = _running(request_id, PrivacyRequest.Kind.ERASE)
    if req is None:
        return None
    try:
        with transaction.atomic():
            report = _erase(req)
    except Exception as exc:  # noqa: BLE001 - any failure ends the request as failed, with its reason
        log.exception("privacy erasure %s failed", req.pk)
        return _failed(req, exc)
    if report is None:
        return None
    req.refresh_from_db()
    log.info("privacy erasure %s done: %s", req.pk, report)
    return req
