"""Links between tickets and the queue's saved views."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from config.concurrency import EditConflict, check_version
from tickets.models import SavedView, Ticket, TicketEvent, TicketLink
from tickets.services.shared import _event, _require_agent


@transaction.atomic
def link_add(*, ticket: Ticket, by: User, target_key: str, kind: str) -> TicketLink:
    """Relate two tickets (duplicate of / related to / blocks)."""
    _require_agent(by)
    target = Ticket.objects.filter(key=target_key.strip().upper()).first()
    if target is None:
        raise DjangoValidationError({"target": _("No request has that key.")})
    if target.pk == ticket.pk:
        raise DjangoValidationError({"target": _("A request cannot be linked to itself.")})
    if kind not in TicketLink.Kind.values:
        raise DjangoValidationError({"kind": _("Choose a kind of link.")})
    link, created = TicketLink.objects.get_or_create(
        source=ticket, target=target, kind=kind, defaults={"created_by": by}
    )
    if created:
        _event(ticket, by, TicketEvent.Kind.LINK, field=kind, new=target.key)
        audit_record(actor=by, action="ticket.link", obj=ticket, changes={kind: target.key})
    return link


@transaction.atomic
def link_remove(*, link: TicketLink, by: User) -> None:
    _require_agent(by)
    _event(link.source, by, TicketEvent.Kind.LINK, field=link.kind, old=link.target.key)
    audit_record(actor=by, action="ticket.unlink", obj=link.source, changes={link.kind: link.target.key})
    link.delete()


@transaction.atomic
def saved_view_save(*, user: User, name: str, query: str, expected_version: str | None = None) -> SavedView:
    """Save the queue's current filters under a name.

    A new name makes a new view. The same name replaces that view, and then `expected_version` is the
    version the person read it at: "" (not given) is VersionRequired, an older one EditConflict.
    """
    name = name.strip()[:60]
    view = SavedView.objects.select_for_update().filter(user=user, name=name).first()
    if view is None:
        try:
            with transaction.atomic():
                return SavedView.objects.create(user=user, name=name, query=query[:1000])
        except IntegrityError as exc:  # the same name saved at the same moment (another tab)
            raise EditConflict() from exc
    check_version(view, expected_version)
    view.query = query[:1000]
    view.save(update_fields=["query"])
    return view


@transaction.atomic
def saved_view_delete(*, user: User, view_id: int) -> int:
    deleted, _details = SavedView.objects.filter(user=user, pk=view_id).delete()
    return deleted
