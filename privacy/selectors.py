"""Reads of the person's requests, scoped to the person asking: managers see them (403 for everyone
else), and only a manager who may see personal data downloads an export (each download logged)."""

from typing import IO

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEntry, User
from accounts.selectors import audit_trail
from privacy import permissions, personal_data
from privacy.models import PrivacyRequest, UnmaskedAccess

OPEN_STATUSES = (PrivacyRequest.Status.PENDING_APPROVAL, PrivacyRequest.Status.RUNNING)


def requests_for_user(*, user: User | AnonymousUser) -> QuerySet[PrivacyRequest]:
    """Every personal data request, newest first, with who filed and approved it (managers only)."""
    if not permissions.can_view_requests(user):
        raise PermissionDenied(_("Only managers see personal data requests."))
    return PrivacyRequest.objects.select_related("requested_by", "approved_by").order_by("-created_at", "-id")


def request_get_for_user(*, user: User | AnonymousUser, request_id: int) -> PrivacyRequest:
    """One request (403 for non-managers, 404 when there is none)."""
    req = requests_for_user(user=user).filter(pk=request_id).first()
    if req is None:
        raise Http404(_("No such request."))
    return req


def request_is_overdue(req: PrivacyRequest) -> bool:
    """Still open past its due date."""
    return req.status in OPEN_STATUSES and req.due_at < timezone.now()


def request_trail(*, req: PrivacyRequest) -> QuerySet[AuditEntry]:
    """What happened to the request (filed, approved, done or failed), oldest first."""
    return audit_trail(object_type=PrivacyRequest._meta.label_lower, object_id=req.pk)


def export_downloadable(req: PrivacyRequest, *, user: User | AnonymousUser) -> bool:
    """Whether this person may download the request's file now (a done export whose file is kept)."""
    return (
        req.kind == PrivacyRequest.Kind.EXPORT
        and req.status == PrivacyRequest.Status.DONE
        and bool(req.file)
        and permissions.can_download_export(user)
    )


def export_open_for_user(*, user: User | AnonymousUser, request_id: int) -> tuple[PrivacyRequest, IO[bytes]]:
    """The export's file opened for this person (403 without the right to it, 404 while it is not ready or
    after retention removed it); the download is written to the access log."""
    req = request_get_for_user(user=user, request_id=request_id)
    if not permissions.can_download_export(user):
        raise PermissionDenied(_("Only managers who may see personal data download an export."))
    if not export_downloadable(req, user=user) or not default_storage.exists(req.file):
        raise Http404(_("The export is not available."))
    handle = default_storage.open(req.file, "rb")
    personal_data.record_unmasked(
        viewer=user,
        kind=UnmaskedAccess.Kind.PRIVACY_EXPORT,
        customer=req.customer_id,
        rows=sum(v for k, v in (req.report or {}).items() if k != "bytes" and isinstance(v, int)),
        what=f"personal data request {req.pk}",
    )
    return req, handle
