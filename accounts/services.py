"""Writes for people, notifications and the shared audit trail."""

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from accounts.models import AuditEntry, Notification, OutboxMessage, Team, User
from accounts.notification_kinds import params_to_json, render
from accounts.roles import ADMIN, ADMIN_MODEL_PERMISSIONS, ROLES
from config.task_queue import enqueue

log = logging.getLogger(__name__)


class UnknownRole(ValueError):
    def __init__(self, role: str) -> None:
        super().__init__(f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}.")


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one row to the audit trail (call inside the transaction that made the change)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        changes=changes or {},
    )


def _audit_object_types() -> list[str]:
    """The object types in the audit trail (a few dozen), one probe of the object index each."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE types AS (
              (SELECT object_type FROM accounts_auditentry ORDER BY object_type LIMIT 1)
              UNION ALL
              SELECT (SELECT a.object_type FROM accounts_auditentry a WHERE a.object_type > types.object_type
                      ORDER BY a.object_type LIMIT 1)
              FROM types WHERE types.object_type IS NOT NULL)
            SELECT object_type FROM types WHERE object_type IS NOT NULL
            """
        )
        return [row[0] for row in cursor.fetchall()]


def audit_entries_scrub(
    *,
    values: Iterable[str],
    objects: Iterable[tuple[str, str | int]] = (),
    reference: str = "erasure",
) -> int:
    """Replace a person's values (an erasure) in the audit entries that can hold them: the entries of the
    given objects (the customer's own, say) and those whose object id is one of the values, looked up
    through the (object type, object id) index. Their changes lose the values (JSON keys and strings,
    case-insensitive), their object id too when it is one; the entries themselves stay, marked redacted
    by `reference` (the erasure request), through the audit chain's one sanctioned redaction path
    (accounts/audit_chain.py). Other entries record counts and versions, never a customer's values
    (docs/privacy.md). In the caller's transaction; returns the entries changed."""
    from accounts.audit_chain import redaction
    from privacy.scrubbing import ERASED, Scrubber

    scrubber = Scrubber(values)
    if not scrubber:
        return 0
    wanted = Q(pk__in=[])
    for object_type, object_id in objects:
        wanted |= Q(object_type=object_type, object_id=str(object_id))
    wanted |= Q(object_type__in=_audit_object_types(), object_id__in=scrubber.values)
    changed = 0
    now = timezone.now()
    with redaction(reference):
        for entry in AuditEntry.objects.filter(wanted).only("pk", "object_id", "changes"):
            changes = scrubber.json(entry.changes)
            scrubbed_id = ERASED if entry.object_id.lower() in scrubber.whole else entry.object_id
            if changes != entry.changes or scrubbed_id != entry.object_id:
                AuditEntry.objects.filter(pk=entry.pk).update(
                    changes=changes, object_id=scrubbed_id, redacted_at=now, redacted_by=reference
                )
                changed += 1
    return changed


def notify(
    *,
    recipients: Iterable[User],
    kind: str,
    params: Mapping[str, Any] | None = None,
    verb: str = "",
    url: str = "",
    email: bool = True,
    chat: bool = False,
) -> list[Notification]:
    """Create in-app notifications of a kind (accounts/notification_kinds.py) with its parameters: each reader
    sees them in their own language. `verb` names the event when finer than the kind (`ticket.resolved`).
    E-mail (each in its recipient's language) and the team-chat post go out from Celery after commit."""
    stored = params_to_json(kind, params or {})
    site_copy = render(kind, stored, language=settings.LANGUAGE_CODE)  # no reader: values masked
    unique = {user.pk: user for user in recipients if user is not None and user.pk and user.is_active}
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                recipient=user,
                verb=verb or kind,
                kind=kind,
                params=stored,
                title=site_copy.title[:300],
                body=site_copy.body,
                url=url,
            )
            for user in unique.values()
        ]
    )
    ids = [n.pk for n in notifications]
    if email and ids:
        enqueue("accounts.tasks.send_notification_emails", ids)
    if chat:
        enqueue("accounts.tasks.post_chat_message", f"{site_copy.title}\n{url}".strip())
    return notifications


def notification_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark one (or, without an id, all) of a person's notifications read; returns how many changed."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        qs = qs.filter(pk=notification_id)
    return qs.update(read_at=timezone.now())


def role_groups_ensure() -> dict[str, Group]:
    """Create the four role groups with their permissions (idempotent; also run by a data migration)."""
    from accounts.roles import ROLE_PERMISSIONS

    groups = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = list(
            Permission.objects.filter(content_type__app_label="accounts", codename__in=ROLE_PERMISSIONS[role])
        )
        if role == ADMIN:
            for app_label, model in ADMIN_MODEL_PERMISSIONS:
                perms += list(
                    Permission.objects.filter(
                        content_type__app_label=app_label,
                        content_type__model=model,
                        codename__regex=rf"^(add|change|delete|view)_{model}$",
                    )
                )
        group.permissions.set(perms)
        groups[role] = group
    return groups


@transaction.atomic
def user_create(
    *,
    username: str,
    role: str,
    team_name: str,
    password: str,
    email: str = "",
    pii: bool = False,
    display_name: str = "",
    language: str | None = None,
) -> User:
    """Create (or update) a user with one role and a team; all or nothing. A new person reads Chinese
    unless a language is given; an update keeps the language the person has unless one is given."""
    if role not in ROLES:
        raise UnknownRole(role)
    team, _ = Team.objects.get_or_create(name=team_name)
    user = User.objects.filter(username=username).first() or User(username=username)
    user.email = email or user.email
    user.team = team
    user.display_name = display_name or user.display_name
    if language or user.pk is None:
        user.language = language or User._meta.get_field("language").default
    user.is_staff = role == ADMIN
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    groups = role_groups_ensure()
    user.groups.set([groups[role]])
    pii_perm = Permission.objects.get(content_type__app_label="accounts", codename="view_pii")
    if pii:
        user.user_permissions.add(pii_perm)
    else:
        user.user_permissions.remove(pii_perm)
    audit_record(
        actor=None, action="user.create", obj=user, changes={"role": role, "team": team.name, "pii": pii}
    )
    log.info("user %s saved with role %s in team %s", username, role, team.name)
    return user


def outbox_flush(*, batch: int = 500) -> int:
    """Send kept tasks in order; a row is deleted only once its message reached the broker."""
    from config.celery import BROKER_ERRORS
    from config.celery import app as celery_app

    sent = 0
    while True:
        with transaction.atomic():
            rows = list(OutboxMessage.objects.select_for_update(skip_locked=True).order_by("id")[:batch])
            if not rows:
                return sent
            for row in rows:
                try:
                    celery_app.send_task(row.task_name, args=row.args, kwargs=row.kwargs, **row.options)
                except BROKER_ERRORS as exc:
                    OutboxMessage.objects.filter(pk=row.pk).update(
                        attempts=row.attempts + 1, error=str(exc)[:500]
                    )
                    log.warning("outbox flush stopped: broker still unreachable (%s)", exc)
                    return sent
                row.delete()
                sent += 1
