"""Reads for tickets, always scoped to the person asking: outside their reach is a 404."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Case, Count, F, IntegerField, OrderBy, Prefetch, Q, QuerySet, Value, When
from django.db.models.expressions import BaseExpression
from django.db.models.functions import Upper
from django.http import Http404, QueryDict
from django.utils.translation import gettext as _

from accounts import roles
from accounts.models import User
from config.inputs import INT64_MAX, InvalidInput, calendar_day, whole_number
from tickets import milestones as plan_milestones
from tickets import permissions, request_types
from tickets.models import (
    Attachment,
    BusinessCalendar,
    CannedReply,
    Comment,
    SavedView,
    SlaPolicy,
    Ticket,
    TicketEvent,
    TicketLink,
)

S = Ticket.Status
KEY_RE = re.compile(r"^[A-Za-z]+-\d+$")
# what a person may type for a key: `MT-1361`, `mt1361`, `MT 1361`
LOOSE_KEY_RE = re.compile(r"^\s*([A-Za-z]{1,10})[-\s]?(\d{1,10})\s*$")


def normalised_key(text: str) -> str | None:
    """`mt1361` → `MT-1361`; None when the text is not a ticket key."""
    match = LOOSE_KEY_RE.match(text or "")
    return f"{match.group(1).upper()}-{match.group(2)}" if match else None


def tickets_visible_to(*, user: User | AnonymousUser) -> QuerySet[Ticket]:
    """Every ticket for support staff; the person's own team's tickets for everyone else."""
    if roles.is_agent(user):
        return Ticket.objects.all()
    if not user.is_authenticated or user.team_id is None:
        return Ticket.objects.none()
    return Ticket.objects.filter(team_id=user.team_id)


def tickets_for_user(*, user: User | AnonymousUser) -> QuerySet[Ticket]:
    """What the person may see (other apps filter this further, e.g. by campaign)."""
    return tickets_visible_to(user=user).select_related("team", "requester", "assignee")


def ticket_get_for_user(*, user: User | AnonymousUser, key: str) -> Ticket:
    """One ticket by key, or Http404 when it does not exist or is outside the person's reach."""
    ticket = (
        tickets_visible_to(user=user)
        .select_related("requester", "assignee", "team", "campaign")
        .filter(key=key.strip().upper())  # keys are stored upper-case: the unique index answers
        .first()
    )
    if ticket is None:
        raise Http404("No such request.")
    return ticket


def ticket_key_for_user(*, user: User | AnonymousUser, text: str) -> str | None:
    """The key typed in `text` (any case, with or without the dash) when that ticket exists and the person
    may see it; None otherwise (a ticket out of reach looks like one that does not exist)."""
    key = normalised_key(text)
    if key is None or not tickets_visible_to(user=user).filter(key=key).exists():
        return None
    return key


@dataclass
class TicketFilters:
    """The queue's filters, read from query parameters (the page and the API share them)."""

    status: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    urgency: list[str] = field(default_factory=list)
    sla_state: list[str] = field(default_factory=list)
    assignee: str = ""
    team: int | None = None
    campaign: int | None = None
    q: str = ""
    # whole days in the viewer's time zone, both ends included (dashboards drill down with these)
    created_from: date | None = None
    created_to: date | None = None
    resolved_from: date | None = None
    resolved_to: date | None = None
    # "overdue": only tickets with a plan milestone past its date and not done (tickets.milestones)
    milestone: str = ""
    # request types (tickets.request_types): the type's id and `cf_<name>=value` filters
    request_type: int | None = None
    custom: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(
        cls, params: QueryDict | dict[str, Any], *, default_open: bool, strict: bool = False
    ) -> TicketFilters:
        """The filters in `params`. A malformed number or day is ignored (the queue page keeps working on
        a hand-edited link), or with `strict` (the API) raises InvalidInput naming the parameter."""

        def many(name: str, allowed: list[str]) -> list[str]:
            values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name) or ""]
            split = [part for value in values for part in str(value).split(",") if part]
            return [value for value in split if value in allowed]

        def checked(name: str, parse: Any) -> Any:
            if strict and hasattr(params, "getlist") and len(params.getlist(name)) > 1:
                raise InvalidInput(_("Give this parameter once."), code="repeated", field=name)
            value = str(params.get(name) or "").strip()
            if not value:
                return None
            try:
                return parse(value)
            except InvalidInput as exc:
                if strict:
                    raise exc.at(name) from exc
                return None

        def number(name: str) -> int | None:
            return checked(name, lambda value: whole_number(value, minimum=1, maximum=INT64_MAX))

        def day(name: str) -> date | None:
            return checked(name, calendar_day)

        status = many("status", [*S.values, "open", "done", "all"])
        if not status and default_open:
            status = ["open"]
        expanded: list[str] = []
        for value in status:
            if value == "open":
                expanded += list(Ticket.OPEN_STATUSES)
            elif value == "done":
                expanded += list(Ticket.DONE_STATUSES)
            elif value == "all":
                expanded = []
                break
            else:
                expanded.append(value)
        return cls(
            status=sorted(set(expanded)),
            type=many("type", Ticket.Type.values),
            urgency=many("urgency", Ticket.Urgency.values),
            sla_state=many("sla_state", Ticket.SlaState.values),
            assignee=str(params.get("assignee") or "")[:150],
            team=number("team"),
            campaign=number("campaign"),
            q=str(params.get("q") or "").strip()[:200],
            created_from=day("created_from"),
            created_to=day("created_to"),
            resolved_from=day("resolved_from"),
            resolved_to=day("resolved_to"),
            milestone="overdue" if str(params.get("milestone") or "") == "overdue" else "",
            request_type=number("request_type"),
            custom=request_types.custom_filter_params(params),
        )

    def apply(self, qs: QuerySet[Ticket], *, user: User, with_status: bool = True) -> QuerySet[Ticket]:
        if with_status and self.status:
            qs = qs.filter(status__in=self.status)
        if self.type:
            qs = qs.filter(type__in=self.type)
        if self.urgency:
            qs = qs.filter(urgency__in=self.urgency)
        if self.sla_state:
            qs = qs.filter(sla_state__in=self.sla_state)
        if self.assignee == "me":
            qs = qs.filter(assignee=user)
        elif self.assignee == "none":
            qs = qs.filter(assignee__isnull=True)
        elif self.assignee:
            qs = qs.filter(assignee__username=self.assignee)
        if self.team is not None:
            qs = qs.filter(team_id=self.team)
        if self.campaign is not None:
            qs = qs.filter(campaign_id=self.campaign)
        if self.request_type is not None:
            qs = qs.filter(request_type_id=self.request_type)
        qs = request_types.custom_fields_filter(qs, self.custom)
        if self.milestone == "overdue":
            qs = qs.filter(plan_milestones.has_overdue_milestone())
        for lookup, value in (
            ("created_at__date__gte", self.created_from),
            ("created_at__date__lte", self.created_to),
            ("resolved_at__date__gte", self.resolved_from),
            ("resolved_at__date__lte", self.resolved_to),
        ):
            if value is not None:
                qs = qs.filter(**{lookup: value})
        if self.q:
            if KEY_RE.match(self.q):
                qs = qs.filter(key=self.q.upper())
            else:
                # UPPER(title) LIKE '%…%' is what the trigram index covers
                qs = qs.alias(title_upper=Upper("title")).filter(title_upper__contains=self.q.upper())
        return qs


def _list_rows(qs: QuerySet[Ticket]) -> QuerySet[Ticket]:
    # the overdue-milestone badge: one EXISTS per row inside the same query
    return qs.select_related("team", "requester", "assignee").annotate(
        overdue_milestones=plan_milestones.has_overdue_milestone()
    )


def _rank(field: str, values: list[str]) -> Case:
    """A choice field's position in `values` (workflow or urgency order, not the alphabet)."""
    whens = [When(**{field: value}, then=Value(i)) for i, value in enumerate(values)]
    return Case(*whens, default=Value(len(values)), output_field=IntegerField())


# The columns the queue sorts by (the `sort` parameter: `updated` ascending, `-updated` descending).
SORT_COLUMNS: dict[str, Any] = {
    "key": lambda: F("number"),
    "title": lambda: F("title"),
    "status": lambda: _rank("status", list(S.values)),
    "priority": lambda: _rank("urgency", list(Ticket.Urgency.values)),
    "sla_due": lambda: F("sla_due"),
    "updated": lambda: F("updated_at"),
}
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class TicketSort:
    """A column of the queue and a direction; an unknown or empty `sort` is no sort (the default order)."""

    column: str = ""
    descending: bool = False

    @classmethod
    def from_param(cls, value: Any) -> TicketSort:
        text = str(value or "").strip()[:20]
        column = text.removeprefix("-")
        if column not in SORT_COLUMNS:
            return cls()
        return cls(column=column, descending=text.startswith("-"))

    @classmethod
    def default_for(cls, filters: TicketFilters) -> TicketSort:
        """The order without a `sort`: the next SLA deadline, or the latest change for a done-only list."""
        if filters.status and set(filters.status) <= set(Ticket.DONE_STATUSES):
            return cls(column="updated", descending=True)
        return cls(column="sla_due")

    @property
    def param(self) -> str:
        return f"-{self.column}" if self.descending and self.column else self.column

    def next_param(self, column: str) -> str:
        """What a click on `column`'s header asks for: the other direction when already sorted by it."""
        return f"-{column}" if column == self.column and not self.descending else column

    def order_by(self) -> list[OrderBy | BaseExpression | str]:
        expression = SORT_COLUMNS[self.column]()
        # only the deadline may be empty (none last either way); the other columns keep the plain order
        # their indexes are built in
        nulls = {"nulls_last": True} if self.column == "sla_due" else {}
        if self.descending:
            return [expression.desc(**nulls), "-id"]
        return [expression.asc(**nulls), "id"]


def page_size(value: Any) -> int:
    """Rows per page: one of PAGE_SIZES, anything else the default."""
    text = str(value or "").strip()
    return int(text) if text in {str(size) for size in PAGE_SIZES} else DEFAULT_PAGE_SIZE


def _ordered(
    qs: QuerySet[Ticket], filters: TicketFilters, sort: TicketSort | None = None
) -> QuerySet[Ticket]:
    """The chosen column, else most urgent SLA deadline first; done tickets have none, so a done-only list
    shows the latest first."""
    chosen = sort if sort is not None and sort.column else TicketSort.default_for(filters)
    return qs.order_by(*chosen.order_by())


def ticket_queue_for_agent(
    *, user: User, filters: TicketFilters, sort: TicketSort | None = None
) -> QuerySet[Ticket]:
    """The support queue: filtered, sorted by the chosen column or most urgent SLA deadline first."""
    if not permissions.can_work(user):
        return Ticket.objects.none()
    return _ordered(_list_rows(filters.apply(Ticket.objects.all(), user=user)), filters, sort)


def ticket_list_for_user(*, user: User, filters: TicketFilters) -> QuerySet[Ticket]:
    """The API list: the queue's filters over what the person may see, in the queue's order."""
    return _ordered(_list_rows(filters.apply(tickets_visible_to(user=user), user=user)), filters)


def queue_status_counts(*, user: User, filters: TicketFilters) -> dict[str, int]:
    """How many open tickets per status match the other filters (the queue's header), in one GROUP BY.

    Only the open statuses (plus any status filtered on) are counted: the done ones grow for ever and
    counting them would make every queue page read the whole table.
    """
    qs = filters.apply(tickets_visible_to(user=user), user=user, with_status=False)
    counted = list(Ticket.OPEN_STATUSES)
    # COUNT(*) lets Postgres answer from the (status, sla_due) index alone
    rows = qs.filter(status__in=counted).order_by().values("status").annotate(n=Count("*"))
    counts = dict.fromkeys(counted, 0)
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


MY_CHIPS = {
    "open": [s for s in Ticket.OPEN_STATUSES if s not in (S.WAITING_ON_REQUESTER, S.AWAITING_ACCEPTANCE)],
    "waiting": [S.WAITING_ON_REQUESTER, S.AWAITING_ACCEPTANCE],
    "done": list(Ticket.DONE_STATUSES),
}


def tickets_for_my_team(*, user: User, chip: str = "", q: str = "") -> QuerySet[Ticket]:
    """The person's team's requests (also for agents: what their own team filed), recently updated first;
    `q` matches a key (`MT-1361`, `mt1361`, `1361`) or words in the title or description."""
    if not user.is_authenticated or user.team_id is None:
        return Ticket.objects.none()
    qs = Ticket.objects.filter(team_id=user.team_id)
    if chip in MY_CHIPS:
        qs = qs.filter(status__in=MY_CHIPS[chip])
    q = q.strip()[:200]
    if q:
        match = Q(title__icontains=q) | Q(description__icontains=q)
        key = normalised_key(q)
        if key:
            match |= Q(key=key)
        elif q.isdigit():
            match |= Q(key__endswith=f"-{q}")
        qs = qs.filter(match)
    return _list_rows(qs).order_by("-updated_at", "-id")


def ticket_search_for_user(*, user: User | AnonymousUser, text: str, limit: int = 10) -> list[Ticket]:
    """Requests the person may see whose key is `text` or whose title holds every word of it (the global
    search), recently updated first."""
    words = text.split()[:8]
    if not words:
        return []
    key = normalised_key(text)
    qs = tickets_visible_to(user=user).alias(title_upper=Upper("title"))
    title = Q()
    for word in words:
        # UPPER(title) LIKE '%…%' is what the trigram index covers
        title &= Q(title_upper__contains=word[:100].upper())
    qs = qs.filter(title | Q(key=key)) if key else qs.filter(title)
    return list(qs.select_related("team").order_by("-updated_at", "-id")[:limit])


def my_team_chip_counts(*, user: User) -> dict[str, int]:
    """Counts for the chips on "My team's requests" (one query)."""
    if user.team_id is None:
        return dict.fromkeys(MY_CHIPS, 0)
    aggregates = {chip: Count("id", filter=Q(status__in=statuses)) for chip, statuses in MY_CHIPS.items()}
    return Ticket.objects.filter(team_id=user.team_id).aggregate(**aggregates)


def comments_for_user(*, user: User, ticket: Ticket) -> QuerySet[Comment]:
    """The conversation; internal notes only for support staff."""
    qs = Comment.objects.filter(ticket=ticket).select_related("author")
    if not permissions.can_see_internal(user):
        qs = qs.filter(internal=False)
    return qs.prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("id"))).order_by(
        "created_at", "id"
    )


def events_for_user(*, user: User, ticket: Ticket) -> QuerySet[TicketEvent]:
    """The audit trail; entries about internal notes and plans only for support staff."""
    qs = TicketEvent.objects.filter(ticket=ticket).select_related("actor")
    if not permissions.can_see_internal(user):
        qs = qs.filter(internal=False)
    return qs.order_by("created_at", "id")


def attachments_for_ticket(*, user: User, ticket: Ticket) -> QuerySet[Attachment]:
    """Files on the ticket itself and on the comments the person may see."""
    qs = Attachment.objects.filter(ticket=ticket).select_related("uploaded_by")
    if not permissions.can_see_internal(user):
        qs = qs.filter(Q(comment__isnull=True) | Q(comment__internal=False))
    return qs.order_by("created_at", "id")


def attachment_get_for_user(*, user: User, pk: int) -> Attachment:
    """One attachment the person may download, or Http404."""
    attachment = Attachment.objects.select_related("ticket", "comment").filter(pk=pk).first()
    if attachment is None or not permissions.can_view(user, attachment.ticket):
        raise Http404("No such file.")
    if (
        attachment.comment is not None
        and attachment.comment.internal
        and not permissions.can_see_internal(user)
    ):
        raise Http404("No such file.")
    return attachment


def links_for_ticket(*, ticket: Ticket) -> list[TicketLink]:
    """Links in both directions."""
    return list(
        TicketLink.objects.filter(Q(source=ticket) | Q(target=ticket))
        .select_related("source", "target")
        .order_by("id")
    )


QUEUE_OPTIONS_KEY = "tickets:queue-options:v1"


def queue_filter_options(*, user: User) -> dict[str, list[tuple[Any, str]]]:
    """Choices for the queue's filter bar (agents, teams, campaigns), cached for a minute: one cache read
    instead of three queries on the busiest page."""
    from django.core.cache import cache

    from accounts.selectors import support_agents, teams
    from campaigns.selectors import campaigns_for_user

    options = cache.get(QUEUE_OPTIONS_KEY)
    if options is None:
        options = {
            "agents": [(u.username, str(u)) for u in support_agents()],
            "teams": [(t.pk, t.name) for t in teams()],
            "campaigns": list(campaigns_for_user(user=user).order_by("name").values_list("id", "name")[:200]),
        }
        cache.set(QUEUE_OPTIONS_KEY, options, timeout=60)
    return options


def canned_replies() -> QuerySet[CannedReply]:
    return CannedReply.objects.order_by("title")


def saved_views_for_user(*, user: User) -> QuerySet[SavedView]:
    return SavedView.objects.filter(user=user).order_by("name")


def saved_view_get_for_user(*, user: User, name: str) -> SavedView:
    """One of the person's own views by name (404 for anyone else's)."""
    view = SavedView.objects.filter(user=user, name=name.strip()[:60]).first()
    if view is None:
        raise Http404
    return view


def sla_policies() -> QuerySet[SlaPolicy]:
    """The policies with their calendars and per-type calendars (three queries)."""
    return (
        SlaPolicy.objects.select_related("calendar")
        .prefetch_related("type_calendars__calendar")
        .order_by("urgency")
    )


def sla_calendars() -> QuerySet[BusinessCalendar]:
    return BusinessCalendar.objects.order_by("pk")


def sla_calendar_get(pk: Any) -> BusinessCalendar | None:
    """A calendar with its weekly hours, holidays and dated hours; the first calendar for no or a bad pk."""
    calendars = BusinessCalendar.objects.prefetch_related("hours", "holidays", "working_days").order_by("pk")
    text = str(pk or "")
    chosen = calendars.filter(pk=int(text)).first() if re.fullmatch(r"[0-9]{1,12}", text) else None
    return chosen or calendars.first()
