"""Request types per team: their fields, the server-side validation of a ticket's values, and the writes
(defining a type, changing a ticket's values). Values live in Ticket.custom_fields as JSON:
text/choice/date (ISO) as strings, number as a JSON number, user as a username, campaign as its id."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.selectors import support_agents
from accounts.services import audit_record
from privacy import personal_data
from privacy.personal_data import Viewer
from tickets import permissions
from tickets.models import Ticket, TicketEvent
from tickets.routing_tables import RequestField, RequestType, Skill

K = RequestField.Kind
FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEXT_MAX = 2000
MAX_FIELDS = 30


class CustomFieldsInvalid(DjangoValidationError):
    """Bad custom field values: `by_field` maps each field's name to its messages; the message names it."""

    def __init__(self, by_field: dict[str, list[str]]) -> None:
        self.by_field = by_field
        super().__init__(
            {"custom_fields": [f"{name}: {msg}" for name, msgs in by_field.items() for msg in msgs]},
            code="invalid",
        )


# --- reads ------------------------------------------------------------------------------------------------


def request_types_for_team(*, team_id: int | None, active_only: bool = True) -> QuerySet[RequestType]:
    qs = RequestType.objects.filter(team_id=team_id).prefetch_related("fields", "skills")
    return qs.filter(active=True) if active_only else qs


def request_type_get(*, team_id: int | None, pk: Any) -> RequestType | None:
    """One of the team's active request types, or None (unknown ids and other teams' types alike)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return request_types_for_team(team_id=team_id).filter(pk=pk).first()


# --- values -----------------------------------------------------------------------------------------------


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        number = Decimal(str(value))
    else:
        number = Decimal(str(value).strip().replace(",", ""))
    if not number.is_finite():
        raise ValueError
    return int(number) if number == number.to_integral_value() and abs(number) < 2**53 else float(number)


def _clean_one(field: RequestField, value: Any, *, requester: User | None) -> Any:
    """The stored form of one value; raises ValueError with the message to show."""
    if field.kind == K.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(_("Enter text."))
        text = str(value).strip()
        if len(text) > TEXT_MAX:
            raise ValueError(_("At most %(n)s characters.") % {"n": TEXT_MAX})
        return text
    if field.kind == K.NUMBER:
        try:
            return _number(value)
        except (ValueError, InvalidOperation, TypeError):
            raise ValueError(_("Enter a number.")) from None
    if field.kind == K.DATE:
        if isinstance(value, dt.date):
            return value.isoformat()
        try:
            return dt.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None
    if field.kind == K.CHOICE:
        text = str(value).strip()
        if text not in [str(c) for c in field.choices]:
            raise ValueError(
                _("Choose one of: %(choices)s.") % {"choices": ", ".join(str(c) for c in field.choices)}
            )
        return text
    if field.kind == K.USER:
        username = value.username if isinstance(value, User) else str(value).strip()
        if not User.objects.filter(username=username, is_active=True).exists():
            raise ValueError(_("No active person with the username “%(name)s”.") % {"name": username[:150]})
        return username
    if field.kind == K.CAMPAIGN:
        from campaigns.models import Campaign
        from campaigns.selectors import campaigns_for_user

        pk = getattr(value, "pk", value)
        try:
            pk = int(str(pk).strip())
        except ValueError:
            raise ValueError(_("Give a campaign's id.")) from None
        visible = campaigns_for_user(user=requester) if requester is not None else Campaign.objects.all()
        if not visible.filter(pk=pk).exists():
            raise ValueError(_("No campaign with id %(id)s that you may see.") % {"id": pk})
        return pk
    raise ValueError(_("Unknown field kind."))


def custom_values_clean(
    request_type: RequestType | None,
    values: Mapping[str, Any] | None,
    *,
    requester: User | None = None,
    partial: bool = False,
) -> dict[str, Any]:
    """Validate `values` against the request type's fields; return what to store. Raises
    CustomFieldsInvalid naming every bad field (unknown, missing when required, wrong kind)."""
    values = dict(values or {})
    if not isinstance(values, dict):
        raise CustomFieldsInvalid({"custom_fields": [_("Give an object of field names and values.")]})
    fields = {f.name: f for f in request_type.fields.all()} if request_type is not None else {}
    errors: dict[str, list[str]] = {}
    for name in values:
        if name not in fields:
            errors[str(name)[:60]] = [
                _("Unknown field for this request type.")
                if request_type
                else _("Choose a request type first.")
            ]
    cleaned: dict[str, Any] = {}
    for name, field in fields.items():
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if field.required and not (partial and name not in values):
                errors[name] = [_("“%(label)s” is required.") % {"label": field.label}]
            continue
        try:
            cleaned[name] = _clean_one(field, value, requester=requester)
        except ValueError as exc:
            errors[name] = [f"{field.label}: {exc}"]
    if errors:
        raise CustomFieldsInvalid(errors)
    return cleaned


def custom_values_for(values: Mapping[str, Any] | None, *, viewer: Viewer) -> dict[str, Any]:
    """Values as this viewer may see them: text may quote a customer, so e-mail addresses and phone
    numbers in it are masked without `view_pii` (privacy.personal_data decides)."""
    return {
        name: personal_data.text_for(value, viewer=viewer) if isinstance(value, str) else value
        for name, value in (values or {}).items()
    }


def custom_values_shown(ticket: Ticket, *, viewer: Viewer) -> list[dict[str, Any]]:
    """The ticket's values in its request type's order, labelled, as the viewer may see them, for the
    ticket page (one query each for the fields, the people and the campaigns named)."""
    if ticket.request_type_id is None:
        return []
    values = custom_values_for(ticket.custom_fields, viewer=viewer)
    fields = list(ticket.request_type.fields.all())
    people = {
        u.username: str(u)
        for u in User.objects.filter(
            username__in=[str(values[f.name]) for f in fields if f.kind == K.USER and f.name in values]
        )
    }
    campaign_ids = [
        values[f.name] for f in fields if f.kind == K.CAMPAIGN and isinstance(values.get(f.name), int)
    ]
    campaigns = {}
    if campaign_ids:
        from campaigns.models import Campaign

        campaigns = {c.pk: c.name for c in Campaign.objects.filter(pk__in=campaign_ids)}
    shown = []
    for field in fields:
        value = values.get(field.name)
        if field.kind == K.USER and value is not None:
            value = people.get(value, value)
        elif field.kind == K.CAMPAIGN and value is not None:
            value = campaigns.get(value, value)
        shown.append({"name": field.name, "label": field.label, "kind": field.kind, "value": value})
    return shown


# --- queue filters and exports ----------------------------------------------------------------------------


def custom_filter_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The queue's `cf_<name>=value` parameters."""
    found = {}
    for key in params:
        if key.startswith("cf_") and FIELD_NAME_RE.match(key[3:]):
            value = str(params.get(key) or "").strip()[:200]
            if value:
                found[key[3:]] = value
    return dict(sorted(found.items()))


def custom_fields_filter(qs: QuerySet[Ticket], custom: Mapping[str, str]) -> QuerySet[Ticket]:
    """Tickets whose value of each named field equals the given text, as that field's kind reads it
    (`custom_fields @> {...}`: the GIN index answers). One query finds the kinds of the named fields."""
    if not custom:
        return qs
    kinds: dict[str, set[str]] = {}
    for name, kind in RequestField.objects.filter(name__in=list(custom)).values_list("name", "kind"):
        kinds.setdefault(name, set()).add(kind)
    for name, text in custom.items():
        match = Q(pk__in=[])
        for kind in kinds.get(name, {K.TEXT}):
            value: Any = text
            if kind == K.NUMBER:
                try:
                    value = _number(text)
                except (ValueError, InvalidOperation):
                    continue
            elif kind == K.CAMPAIGN:
                if not text.isdigit():
                    continue
                value = int(text)
            match |= Q(custom_fields__contains={name: value})
        qs = qs.filter(match)
    return qs


def export_columns(request_type_id: int | None) -> list[tuple[str, Any]]:
    """(header `cf_<name>`, value as text) for each field of the chosen request type, for ticket exports."""
    return [
        (f"cf_{name}", KeyTextTransform(name, "custom_fields"))
        for name in export_field_names(request_type_id)
    ]


def export_field_names(request_type_id: int | None) -> list[str]:
    if not request_type_id:
        return []
    return list(RequestField.objects.filter(request_type_id=request_type_id).values_list("name", flat=True))


def export_values(ticket: Ticket, names: Iterable[str], *, viewer: Viewer) -> list[str]:
    values = custom_values_for(ticket.custom_fields, viewer=viewer)
    return ["" if values.get(name) is None else str(values[name]) for name in names]


# --- writes -----------------------------------------------------------------------------------------------


def _require_manager(user: User) -> None:
    if not permissions.can_manage_routing(user):
        raise PermissionDenied(_("Only managers may define request types."))


def field_specs_clean(specs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Check field definitions (name, label, kind, required, choices); errors name the field."""
    cleaned: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: set[str] = set()
    for position, spec in enumerate(specs):
        name = str(spec.get("name") or "").strip()
        where = name or f"#{position + 1}"
        if not FIELD_NAME_RE.match(name):
            errors.append(
                _(
                    "Field %(field)s: the name must start with a lower-case letter and use only a-z, 0-9 and _."
                )
                % {"field": where}
            )
            continue
        if name in seen:
            errors.append(_("Field %(field)s: the name is used twice.") % {"field": where})
            continue
        seen.add(name)
        kind = str(spec.get("kind") or K.TEXT)
        if kind not in K.values:
            errors.append(
                _("Field %(field)s: the kind must be one of %(kinds)s.")
                % {"field": where, "kinds": ", ".join(K.values)}
            )
            continue
        raw_choices = spec.get("choices") or []
        if isinstance(raw_choices, str):
            raw_choices = raw_choices.split(",")
        choices = [str(c).strip()[:100] for c in raw_choices if str(c).strip()]
        if kind == K.CHOICE and not choices:
            errors.append(_("Field %(field)s: a choice field needs choices.") % {"field": where})
            continue
        label = str(spec.get("label") or "").strip()[:100] or name
        cleaned.append(
            {
                "name": name,
                "label": label,
                "kind": kind,
                "required": bool(spec.get("required")),
                "choices": choices if kind == K.CHOICE else [],
                "position": position,
            }
        )
    if len(cleaned) > MAX_FIELDS:
        errors.append(_("At most %(n)s fields.") % {"n": MAX_FIELDS})
    if errors:
        raise DjangoValidationError({"fields": errors})
    return cleaned


def _type_values_check(
    *, default_type: str, default_urgency: str, default_assignee: User | None, name: str
) -> None:
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = _("Give the request type a name.")
    if default_type and default_type not in Ticket.Type.values:
        errors["default_type"] = _("Not a request type of the workflow.")
    if default_urgency and default_urgency not in Ticket.Urgency.values:
        errors["default_urgency"] = _("Choose urgent, routine or planned.")
    if default_assignee is not None and not support_agents().filter(pk=default_assignee.pk).exists():
        errors["default_assignee"] = _("The assignee must be a member of the support staff.")
    if errors:
        raise DjangoValidationError(errors)


@transaction.atomic
def request_type_save(
    *,
    team: Team,
    by: User,
    name: str,
    instance: RequestType | None = None,
    description: str = "",
    default_type: str = "",
    default_urgency: str = "",
    default_assignee: User | None = None,
    skills: Iterable[Skill] = (),
    active: bool = True,
    fields: Iterable[Mapping[str, Any]] | None = None,
) -> RequestType:
    """Create or change a team's request type (manager); `fields` (if given) replaces its fields. Values
    already on tickets stay as they were."""
    _require_manager(by)
    _type_values_check(
        default_type=default_type,
        default_urgency=default_urgency,
        default_assignee=default_assignee,
        name=name,
    )
    specs = field_specs_clean(fields) if fields is not None else None
    request_type = instance or RequestType(team=team)
    if request_type.team_id != team.pk:
        raise PermissionDenied(_("That request type belongs to another team."))
    created = request_type.pk is None
    request_type.name = name.strip()[:100]
    request_type.description = description.strip()[:300]
    request_type.default_type = default_type
    request_type.default_urgency = default_urgency
    request_type.default_assignee = default_assignee
    request_type.active = active
    try:
        with transaction.atomic():
            request_type.save()
    except IntegrityError:
        raise DjangoValidationError(
            {"name": _("This team already has a request type of that name.")}
        ) from None
    request_type.skills.set(list(skills))
    if specs is not None:
        request_type.fields.all().delete()
        RequestField.objects.bulk_create([RequestField(request_type=request_type, **spec) for spec in specs])
    audit_record(
        actor=by,
        action="request_type.create" if created else "request_type.update",
        obj=request_type,
        changes={
            "team": team.pk,
            "name": request_type.name,
            "defaults": [
                default_type,
                default_urgency,
                default_assignee.username if default_assignee else None,
            ],
            **({"fields": [s["name"] for s in specs]} if specs is not None else {}),
        },
    )
    return request_type


@transaction.atomic
def request_field_add(*, request_type: RequestType, by: User, spec: Mapping[str, Any]) -> RequestField:
    """Add one field at the end (manager); the name must be new in this request type."""
    _require_manager(by)
    (clean,) = field_specs_clean([spec])
    if request_type.fields.filter(name=clean["name"]).exists():
        raise DjangoValidationError({"name": _("This request type already has a field of that name.")})
    clean["position"] = request_type.fields.count()
    field = RequestField.objects.create(request_type=request_type, **clean)
    audit_record(actor=by, action="request_type.field_add", obj=request_type, changes={"field": clean})
    return field


@transaction.atomic
def request_field_remove(*, request_type: RequestType, by: User, field_id: int) -> bool:
    _require_manager(by)
    field = request_type.fields.filter(pk=field_id).first()
    if field is None:
        return False
    field.delete()
    audit_record(
        actor=by, action="request_type.field_remove", obj=request_type, changes={"field": field.name}
    )
    return True


def new_ticket_values(
    *,
    team_id: int,
    request_type: RequestType | None,
    custom_fields: Mapping[str, Any] | None,
    requester: User,
    type: str,
    urgency: str,
) -> tuple[str, str, dict[str, Any]]:
    """For ticket_create: the type and urgency (the request type's defaults fill blanks) and the checked
    values. Raises a ValidationError naming the field."""
    if request_type is not None and (request_type.team_id != team_id or not request_type.active):
        raise DjangoValidationError({"request_type": _("Choose one of your team's request types.")})
    values = custom_values_clean(request_type, custom_fields, requester=requester)
    type = type or (request_type.default_type if request_type else "")
    urgency = urgency or (request_type.default_urgency if request_type else "")
    missing = {
        name: _("This field is required.") for name, v in (("type", type), ("urgency", urgency)) if not v
    }
    if missing:
        raise DjangoValidationError(missing)
    return type, urgency, values


@transaction.atomic
def ticket_custom_fields_update(*, ticket: Ticket, by: User, values: Mapping[str, Any]) -> Ticket:
    """Change some of a ticket's field values (the others stay); the requesting side or support staff.
    Audited per field."""
    from tickets.services.shared import _event, _lock

    ticket = _lock(ticket)
    if not (permissions.can_work(by) or (by.team_id == ticket.team_id and ticket.is_open)):
        raise PermissionDenied(_("You may not change this request's fields."))
    cleaned = custom_values_clean(ticket.request_type, values, requester=ticket.requester, partial=True)
    current = dict(ticket.custom_fields or {})
    changed = {}
    for name in values:
        new = cleaned.get(name)
        if current.get(name) != new:
            changed[name] = [current.get(name), new]
            _event(
                ticket,
                by,
                TicketEvent.Kind.FIELD,
                field=f"cf_{name}"[:40],
                old=current.get(name) or "",
                new=new or "",
            )
            if new is None:
                current.pop(name, None)
            else:
                current[name] = new
    if changed:
        ticket.custom_fields = current
        ticket.save(update_fields=["custom_fields", "updated_at"])
        audit_record(actor=by, action="ticket.custom_fields", obj=ticket, changes=changed)
    return ticket
