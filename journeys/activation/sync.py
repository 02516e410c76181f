"""Running one sync (a Celery task calls `sync_execute`):

1. claim the queued run (`SKIP LOCKED`: one worker per run);
2. stage once, in one transaction: the audience's members (snapshot) or its entered / exited against the
   destination's baseline (delta), and for a webhook the batches, each body fixed when made (so its
   signature and Idempotency-Key are the same on every retry);
3. send the batches not yet answered 2xx, in order, with the journeys' webhook sender (delivery.py: the
   same headers and HMAC signature), or write the CSV file atomically;
4. only when everything arrived: move the baseline, mark the run done, all in one transaction. A failure
   leaves the baseline where it was and the run `failed`; its retry sends the batches that got no 2xx, so a
   member is neither lost nor sent twice.
"""

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from journeys import delivery
from journeys.activation import audience as aud
from journeys.activation import files
from journeys.models import Destination, SyncBatch, SyncRun
from privacy import personal_data

log = logging.getLogger(__name__)
# personal fields an audience sync can carry beside the external id (when its destination is set up for them)
SYNC_PERSONAL_FIELDS = ("email", "phone")
BATCHES_PER_INSERT = 500


def audience_of_run(run: SyncRun) -> aud.Audience | None:
    if run.tag_id is not None:
        return aud.audience_of_tag(run.tag)
    if run.campaign_id is not None:
        return aud.audience_of_campaign(run.campaign)
    return None


def personal_fields_sent(destination: Destination, purpose: str) -> list[str]:
    """The personal fields this sync carries: those the destination is set up for, and only when the sync
    filters by the destination's own consent purpose (so each value goes where its person agreed)."""
    if not destination.purpose or purpose != destination.purpose:
        return []
    return [f for f in SYNC_PERSONAL_FIELDS if f in (destination.personal_fields or [])]


def _staged_rows(run: SyncRun, fields: list[str]) -> Iterator[tuple[str, list[Any]]]:
    """(change, [external_id, *personal values]) of the run's staged set, entered before exited, by external id;
    personal values pass the privacy module's maskers (unmasked only for the fields the destination may get)."""
    columns = ", ".join(f"c.{f}" for f in fields)
    select = f"SELECT s.change, c.external_id{', ' + columns if columns else ''} "
    maskers = personal_data.row_maskers(
        unmasked=bool(fields), columns={i + 1: f for i, f in enumerate(fields)}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            select + "FROM journeys_syncmember s JOIN crm_tags_customer c ON c.id = s.customer_id "  # noqa: S608
            "WHERE s.run_id = %s ORDER BY s.change = 'exited', c.external_id",
            [run.pk],
        )
        while True:
            chunk = cursor.fetchmany(5000)
            if not chunk:
                break
            for change, *values in chunk:
                for index, masker in maskers.items():
                    values[index] = masker(values[index])
                yield change, values


def _item(values: list[Any], fields: list[str]) -> dict[str, Any]:
    item = {"external_id": values[0]}
    for index, field in enumerate(fields, start=1):
        item[field] = values[index]
    return item


def _body(
    run: SyncRun, audience: aud.Audience, number: int, total: int, items: list[tuple[str, dict]]
) -> str:
    body: dict[str, Any] = {
        "sync": run.pk,
        "mode": run.mode,
        "audience": {audience.kind: audience.label},
        "batch": number,
        "batches": total,
    }
    if run.mode == "delta":
        body["entered"] = [item for change, item in items if change == "entered"]
        body["exited"] = [item for change, item in items if change == "exited"]
    else:
        body["members"] = [item for _change, item in items]
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _make_batches(run: SyncRun, audience: aud.Audience, fields: list[str], rows: int) -> int:
    size = max(run.destination.batch_size, 1)
    total = max((rows + size - 1) // size, 1 if run.mode == "snapshot" else 0)
    pending: list[SyncBatch] = []
    chunk: list[tuple[str, dict]] = []
    number = 0

    def flush() -> None:
        nonlocal number, chunk
        number += 1
        pending.append(
            SyncBatch(
                run=run,
                number=number,
                idempotency_key=f"sync-{run.pk}-{number}",
                body=_body(run, audience, number, total, chunk),
                items=len(chunk),
            )
        )
        chunk = []
        if len(pending) >= BATCHES_PER_INSERT:
            SyncBatch.objects.bulk_create(pending)
            pending.clear()

    for change, values in _staged_rows(run, fields):
        chunk.append((change, _item(values, fields)))
        if len(chunk) >= size:
            flush()
    if chunk or (number == 0 and total == 1):
        flush()
    SyncBatch.objects.bulk_create(pending)
    return number


def _stage(run: SyncRun) -> None:
    """Stage the run's set and (webhooks) its batches; one transaction, so a failure stages nothing."""
    audience = audience_of_run(run)
    if audience is None:
        raise SyncFailed("audience_missing")
    delta = run.mode == "delta"
    with transaction.atomic():
        total, allowed = aud.counts(audience, run.purpose)
        aud.stage(
            run_id=run.pk,
            destination_id=run.destination_id,
            audience=audience,
            purpose=run.purpose,
            delta=delta,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE change = 'entered'), count(*) FILTER (WHERE change = 'exited'), "
                "count(*) FROM journeys_syncmember WHERE run_id = %s",
                [run.pk],
            )
            entered, exited, staged = cursor.fetchone()
        run.members, run.skipped = allowed, total - allowed
        run.entered, run.exited = (entered, exited) if delta else (0, 0)
        if run.destination.kind == Destination.Kind.WEBHOOK:
            fields = personal_fields_sent(run.destination, run.purpose)
            run.batches = _make_batches(run, audience, fields, staged)
        run.staged = True
        run.save(update_fields=["members", "skipped", "entered", "exited", "batches", "staged"])


class SyncFailed(Exception):
    """A sync that could not complete; the message is a code or a path, never a customer's value."""


def _send(run: SyncRun) -> int:
    """Send the batches with no 2xx answer yet, in order; stop at the first failure. Returns the members
    delivered by this run so far."""
    for batch in run.requests.filter(status=SyncBatch.Status.PENDING).order_by("number"):
        status, error = delivery._post(run.destination, batch)  # noqa: SLF001 - the one signed sender
        batch.attempts += 1
        batch.last_status = status
        batch.last_error = error[:200]
        if not error:
            batch.status = SyncBatch.Status.DELIVERED
            batch.delivered_at = timezone.now()
            batch.body = ""  # delivered: what a purpose allowed is no longer kept
        batch.save(update_fields=["attempts", "last_status", "last_error", "status", "delivered_at", "body"])
        if error:
            raise SyncFailed(f"batch {batch.number}/{run.batches}: {error}")
    return sum(run.requests.values_list("items", flat=True))


def file_name(run: SyncRun) -> str:
    label = re.sub(r"[^A-Za-z0-9_-]+", "-", run.audience_label).strip("-")[:60] or "audience"
    stamp = timezone.localtime(run.created_at, timezone.get_fixed_timezone(0)).strftime("%Y%m%dT%H%M%SZ")
    return f"{label}-{run.mode}-{stamp}-{run.pk}.csv"


def _write_file(run: SyncRun) -> int:
    destination = run.destination
    bucket = files.is_bucket(destination.folder)
    try:
        folder = None if bucket else files.folder_path(destination.folder)
    except files.FolderInvalid as exc:
        raise SyncFailed(str(exc)) from exc
    fields = personal_fields_sent(destination, run.purpose)
    delta = run.mode == "delta"
    header = ["external_id", *(["change"] if delta else []), *fields]
    rows = (
        [values[0], *([change] if delta else []), *values[1:]] for change, values in _staged_rows(run, fields)
    )
    if bucket:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            run.file_path, count = files.csv_upload(destination.folder, file_name(run), header, rows)
        except files.FolderInvalid as exc:
            raise SyncFailed(str(exc)) from exc
        except (BotoCoreError, ClientError, OSError) as exc:
            raise SyncFailed(f"bucket: {type(exc).__name__}") from exc
        return count
    try:
        path, count = files.csv_write_atomic(folder, file_name(run), header, rows)
    except OSError as exc:
        raise SyncFailed(f"file: {type(exc).__name__}") from exc
    run.file_path = str(path.relative_to(files.file_root().resolve()))
    return count


def _finish(run: SyncRun, *, sent: int, error: str, seconds: float) -> SyncRun:
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().select_related("destination").get(pk=run.pk)
        run.seconds = seconds
        run.finished_at = timezone.now()
        run.sent = sent
        if error:
            run.status, run.error = SyncRun.Status.FAILED, error[:500]
        else:
            aud.baseline_move(
                run_id=run.pk, destination_id=run.destination_id, key=run.audience, delta=run.mode == "delta"
            )
            run.status, run.error = SyncRun.Status.DONE, ""
        run.save()
    return run


def sync_execute(*, run_id: int) -> SyncRun | None:
    """Run (or re-run, after a retry) a queued sync; returns it, or None when it is not queued."""
    with transaction.atomic():
        run = (
            SyncRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=run_id, status=SyncRun.Status.QUEUED)
            .first()
        )
        if run is None:
            return None
        run.status = SyncRun.Status.RUNNING
        run.attempts += 1
        run.started_at = timezone.now()
        run.save(update_fields=["status", "attempts", "started_at"])
    run = SyncRun.objects.select_related("destination", "tag", "campaign", "requested_by").get(pk=run_id)
    started = time.monotonic()
    sent, error = 0, ""
    try:
        if not run.staged:
            _stage(run)
        if run.destination.kind == Destination.Kind.WEBHOOK:
            sent = _send(run)
        else:
            sent = _write_file(run)
            run.save(update_fields=["file_path"])
    except SyncFailed as exc:
        error = str(exc)
    except DatabaseError as exc:  # a statement refused or timed out: failed, retryable, never stuck running
        log.exception("audience sync %s failed", run.pk)
        error = f"database: {type(exc).__name__}"
    if error and run.destination.kind == Destination.Kind.WEBHOOK:
        sent = sum(run.requests.filter(status=SyncBatch.Status.DELIVERED).values_list("items", flat=True))
    fields = personal_fields_sent(run.destination, run.purpose)
    if fields and sent:
        personal_data.record_unmasked(
            viewer=run.requested_by or run.destination.created_by,
            kind="export",
            rows=sent,
            what=f"audience sync {run.pk} to destination {run.destination.name}",
        )
    run = _finish(run, sent=sent, error=error, seconds=time.monotonic() - started)
    log.info(
        "audience sync %s (%s, %s) %s: sent %s, skipped %s in %.2fs",
        run.pk,
        run.audience,
        run.mode,
        run.status,
        run.sent,
        run.skipped,
        run.seconds,
    )
    return run


def unsent_batches_erase(*, external_id: str, scrubber: Any) -> int:
    """An erasure's step: the person's items leave every batch not yet delivered (a failed sync keeps them
    for its retry), so the retry sends the others and never the person; any value of theirs left elsewhere in
    a body, or quoted by a batch's error, is replaced. Returns the batches changed."""
    from django.db.models import Q

    holds = Q(body__icontains=external_id) if external_id else Q(pk__in=[])
    for value in scrubber.values:
        holds |= Q(body__icontains=value) | Q(last_error__icontains=value)
    changed = 0
    batches = SyncBatch.objects.select_for_update().filter(holds).exclude(status=SyncBatch.Status.DELIVERED)
    for batch in batches.only("pk", "body", "items", "last_error"):
        body, items = _body_without(batch.body, external_id, scrubber), batch.items
        if body is None:  # not a body this module made: its text scrubbed as it is
            body = scrubber.text(batch.body)
        else:
            body, items = body
        last_error = scrubber.text(batch.last_error)
        if (body, items, last_error) != (batch.body, batch.items, batch.last_error):
            SyncBatch.objects.filter(pk=batch.pk).update(body=body, items=items, last_error=last_error)
            changed += 1
    return changed


def _body_without(raw: str, external_id: str, scrubber: Any) -> tuple[str, int] | None:
    """A batch body without the person's items and with their values replaced, and its item count."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    items = 0
    for key in ("entered", "exited", "members"):
        if isinstance(body.get(key), list):
            body[key] = [
                item
                for item in body[key]
                if not (isinstance(item, dict) and _is_person(item, external_id, scrubber))
            ]
            items += len(body[key])
    return json.dumps(scrubber.json(body), separators=(",", ":"), ensure_ascii=False), items


def _is_person(item: dict, external_id: str, scrubber: Any) -> bool:
    """The item names the person: their external id, or (an id already replaced) one of their values."""
    if external_id and item.get("external_id") == external_id:
        return True
    return any(scrubber.text(str(v)) != str(v) for v in item.values() if v)


def stale_runs_fail(*, now: datetime | None = None) -> int:
    """Runs left `running` by a worker that died (longer than ACTIVATION_SYNC_STALE_SECONDS, default 900 s,
    beyond any task's time limit) become `failed` (`worker_lost`), so they can be retried."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=float(getattr(settings, "ACTIVATION_SYNC_STALE_SECONDS", 900)))
    return SyncRun.objects.filter(status=SyncRun.Status.RUNNING, started_at__lt=stale).update(
        status=SyncRun.Status.FAILED, error="worker_lost", finished_at=now
    )
