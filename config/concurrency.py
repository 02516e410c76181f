"""Optimistic concurrency for edits: no lost update when two people edit the same object.

Every editable model carries a version counter (`Versioned.lock_version`), raised by each save that can
change what an editor sees. A client reads the version with the object (the API's `ETag` header, the
pages' hidden `version` field) and sends it back with its edit (`If-Match`, or the field); the service
compares it with the row it holds locked:

- no version sent: `VersionRequired`, answered 428 Precondition Required (refused at the edge);
- an older version: `EditConflict`, answered 409 Conflict.

Either way nothing is saved, and the answer carries the current values (the API: `current` and the
`ETag` header; the pages: the form filled with them, a message, and what the editor had typed) so the
edit can be made again on top of them. Writes that go around `save()` (`QuerySet.update`) leave the
version alone: keep them for fields no edit form holds (counters, time stamps, book-keeping).
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from django import forms
from django.db import models
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

VERSION_FIELD = "version"
# Fields every save may touch without being an edit.
_ALWAYS_UNVERSIONED = frozenset({"updated_at", "lock_version"})


class EditConflict(Exception):
    """Someone else saved the object after the editor loaded it (HTTP 409)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "Someone else changed this after you opened it. Nothing was saved: "
                "start again from the current values."
            )
        )


class VersionRequired(Exception):
    """An edit came without the version it was made from, so it could overwrite anything (HTTP 428)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or _(
                "This form came without the version you edited, so it could overwrite someone else's "
                "changes. Nothing was saved: start again from the current values."
            )
        )


# --- models -----------------------------------------------------------------------------------------


class Versioned(models.Model):
    """An editable model: `lock_version` goes up by one on every save that changes what an editor sees."""

    lock_version = models.PositiveIntegerField(
        gettext_lazy("version"), default=1, db_default=1, editable=False
    )
    # Book-keeping a save may change without a new version (no edit form holds these fields).
    unversioned_fields: ClassVar[frozenset[str]] = frozenset()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        bump = not self._state.adding and (
            update_fields is None or bool(set(update_fields) - self.unversioned_fields - _ALWAYS_UNVERSIONED)
        )
        if not bump:
            super().save(*args, **kwargs)
            return
        before = self.lock_version
        # Raised by the database, so a stale copy in memory can never move the version backwards.
        self.lock_version = F("lock_version") + 1
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "lock_version"}
        try:
            super().save(*args, **kwargs)
        except BaseException:
            self.lock_version = before
            raise
        self.lock_version = (
            type(self)._base_manager.filter(pk=self.pk).values_list("lock_version", flat=True).get()
        )


def version_token(obj: Any) -> str:
    """The version as clients see it (the ETag's value, the hidden field's value); "" for no object."""
    version = getattr(obj, "lock_version", None)
    return "" if version is None else str(version)


def etag(version: str) -> str:
    """A strong entity tag for a version: `"7"`."""
    return f'"{version}"'


def _bare(token: str) -> str:
    # Weak comparison: a proxy compressing the answer may have turned `"7"` into `W/"7"`.
    return token.strip().removeprefix("W/").strip('"')


def check_version(obj: Any, expected: str | Sequence[str] | None) -> None:
    """Under the row lock: raise EditConflict unless the object is at one of the `expected` versions.

    `expected=None` means no check (scripts and tasks read and write under the lock); an empty one is
    VersionRequired.
    """
    if expected is None:
        return
    accepted = {_bare(t) for t in ([expected] if isinstance(expected, str) else expected)} - {""}
    if not accepted:
        raise VersionRequired()
    if version_token(obj) not in accepted:
        raise EditConflict()


# --- pages ------------------------------------------------------------------------------------------


class VersionedFormMixin:
    """An edit form with the hidden `version` field: the version of the object it was filled from.

    The value comes from the form's instance, or `version=` for forms without one. On a conflict the
    view renders a new form from the current object (so a new version), never the submitted one.
    """

    def __init__(self, *args: Any, version: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[VERSION_FIELD] = forms.CharField(widget=forms.HiddenInput, required=False)
        if version is None:
            instance = getattr(self, "instance", None)
            version = version_token(instance) if instance is not None and instance.pk else ""
        self.initial[VERSION_FIELD] = version

    def submitted_version(self) -> str:
        """The version the submitted form was filled from; VersionRequired when it came without one."""
        value = str(self.data.get(self.add_prefix(VERSION_FIELD)) or "").strip()
        if not value:
            raise VersionRequired()
        return value

    def unsaved_values(self, current: forms.BaseForm) -> list[tuple[str, str]]:
        """(label, value) of each field this submitted form would have changed against `current`, the
        form filled from the current object: shown next to a conflict, so nothing typed is lost."""
        rows = []
        for name, field in self.fields.items():
            if name == VERSION_FIELD or field.disabled or isinstance(field.widget, forms.HiddenInput):
                continue
            if name not in current.fields:
                continue
            data = self[name].data
            if field.has_changed(current[name].initial, data):
                rows.append((str(field.label or name), _shown(field, data)))
        return rows


def _shown(field: forms.Field, data: Any) -> str:
    if isinstance(field, forms.BooleanField):
        return _("yes") if field.to_python(data) else _("no")
    if data in (None, "", [], ()):
        return "—"
    values = list(data) if isinstance(data, (list, tuple)) else [data]
    if isinstance(field, forms.ChoiceField):
        labels = {str(value): str(label) for value, label in field.choices}
        values = [labels.get(str(v), v) for v in values]
    return ", ".join(str(v) for v in values)


CONFLICT_STATUSES = frozenset({409, 428})


def conflict_status(exc: EditConflict | VersionRequired) -> int:
    """428 for a missing version, 409 for a stale one (pages and API alike)."""
    return 428 if isinstance(exc, VersionRequired) else 409


# --- API --------------------------------------------------------------------------------------------


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = "Send If-Match with the ETag of the object as you read it."
    default_code = "precondition_required"


class VersionConflict(exceptions.APIException):
    status_code = 409
    default_detail = "The object changed after you read it."
    default_code = "edit_conflict"


def if_match(request: Request) -> tuple[str, ...]:
    """The versions an API client sent in `If-Match`; VersionRequired without one (or with `*`, which
    would match any version and so protect nothing)."""
    tokens = tuple(t for t in (_bare(p) for p in request.headers.get("If-Match", "").split(",")) if t)
    if not tokens or "*" in tokens:
        raise VersionRequired(
            _(
                "Send the If-Match header with the ETag of the object as you read it (If-Match: * is not "
                "accepted). Nothing was saved; the current values are in `current`."
            )
        )
    return tokens


def version_error(
    exc: EditConflict | VersionRequired, *, version: str, current: Any
) -> exceptions.APIException:
    """The API's answer to a missing (428) or stale (409) version: the current values and their ETag."""
    error = PreconditionRequired() if isinstance(exc, VersionRequired) else VersionConflict()
    message = str(exc)
    error.detail = {
        "detail": message,
        "errors": [{"message": message, "code": error.default_code, "field": "If-Match"}],
        "current": current,
        "etag": etag(version),
    }
    error.etag = etag(version)  # set as the answer's ETag header by config.api's exception handler
    return error


@contextmanager
def api_versions(current: Callable[[], tuple[str, Any]]) -> Iterator[None]:
    """Answer a VersionRequired or EditConflict raised inside with 428 / 409; `current()` gives the
    object's (version, values) as the caller may see them, read after the refused write."""
    try:
        yield
    except (VersionRequired, EditConflict) as exc:
        version, values = current()
        raise version_error(exc, version=version, current=values) from exc


def with_etag(response: Response, version: str) -> Response:
    response["ETag"] = etag(version)
    return response


# --- OpenAPI ----------------------------------------------------------------------------------------


def if_match_parameter(*, required: bool = True, description: str = "") -> OpenApiParameter:
    """The `If-Match` request header of an edit."""
    return OpenApiParameter(
        "If-Match",
        str,
        location=OpenApiParameter.HEADER,
        required=required,
        description=description
        or 'The `ETag` of the object as you last read it, e.g. `"7"`. Without it: 428; with an older one '
        "(someone saved since): 409. Both answers carry the current values and their ETag.",
    )


IF_MATCH_PARAMETER = if_match_parameter()


def etag_header(*codes: int) -> OpenApiParameter:
    """The `ETag` response header on the given status codes."""
    return OpenApiParameter(
        "ETag",
        str,
        location=OpenApiParameter.HEADER,
        response=list(codes),
        description="The object's version: send it back as If-Match with your next edit.",
    )


class VersionErrorItemSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()
    field = serializers.CharField(required=False)


def version_error_responses(name: str, current: type[serializers.Serializer]) -> dict[int, OpenApiResponse]:
    """409 and 428 as documented answers; `current` is the serializer of the object's values (absent
    from a 409 that is not about versions, such as an article that is no longer a draft)."""
    body = inline_serializer(
        f"{name}VersionError",
        {
            "detail": serializers.CharField(),
            "errors": VersionErrorItemSerializer(many=True),
            "current": current(required=False, allow_null=True, help_text="The object as it now is."),
            "etag": serializers.CharField(
                required=False, help_text="The current version, to send as If-Match."
            ),
        },
    )
    return {
        409: OpenApiResponse(
            body, description="Someone saved a newer version since your ETag: nothing saved."
        ),
        428: OpenApiResponse(body, description="No If-Match header (or `*`): nothing saved."),
    }
