"""The agents' queue (HTML + htmx): filters, sortable columns, page size, CSV export, bulk actions and
saved views. Thin: the filters, the order and the rows come from tickets.selectors."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_GET, require_POST

from config.concurrency import EditConflict, VersionRequired, conflict_status
from config.csv_export import stream_csv
from config.db_router import replica_reads_iter
from tickets import forms, request_types, selectors, services
from tickets.models import Ticket
from tickets.views import require_agent

log = logging.getLogger(__name__)
S = Ticket.Status

# The sortable headers, in the table's order: (sort column, label, extra class).
SORTABLE_HEADERS: list[tuple[str, Any, str]] = [
    ("key", pgettext_lazy("ticket key", "Key"), ""),
    ("title", gettext_lazy("Title"), ""),
    ("status", gettext_lazy("Status"), ""),
    ("priority", gettext_lazy("Urgency"), "mt-secondary"),
    ("sla_due", gettext_lazy("Due"), "mt-secondary"),
    ("updated", gettext_lazy("Updated"), "mt-secondary"),
]
EXPORT_HEADER = [
    "key",
    "title",
    "status",
    "urgency",
    "type",
    "team",
    "requester",
    "assignee",
    "sla_state",
    "sla_due",
    "created_at",
    "updated_at",
]


class KnownCountPaginator(Paginator):
    """A paginator that is told the total when the caller already counted it."""

    def __init__(self, object_list: Any, per_page: int, count: int | None = None) -> None:
        super().__init__(object_list, per_page)
        if count is not None:
            self.__dict__["count"] = count  # fills the cached_property


def _without(params: QueryDict, *names: str) -> QueryDict:
    query = params.copy()
    for name in names:
        query.pop(name, None)
    return query


def sort_headers(params: QueryDict, shown: selectors.TicketSort) -> dict[str, dict[str, str]]:
    """Per sortable column: the link a click follows (the other direction when already sorted by it, the
    filters kept, back to page 1), its aria-sort and its arrow."""
    base = _without(params, "sort", "page", "export")
    headers = {}
    for column, label, css in SORTABLE_HEADERS:
        query = base.copy()
        query["sort"] = shown.next_param(column)
        active = column == shown.column
        headers[column] = {
            "label": str(label),
            "css": css,
            "query": query.urlencode(),
            "aria": ("descending" if shown.descending else "ascending") if active else "",
            "arrow": ("▼" if shown.descending else "▲") if active else "",
        }
    return headers


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The agents' queue: counts per status, filters, sorted by a column (SLA due by default), a page size,
    bulk actions, saved views."""
    require_agent(request)
    filters = selectors.TicketFilters.from_params(request.GET, default_open=True)
    sort = selectors.TicketSort.from_param(request.GET.get("sort"))
    per_page = selectors.page_size(request.GET.get("per_page"))
    counts = selectors.queue_status_counts(user=request.user, filters=filters)
    # when only open statuses are asked for, the header's counts already give the total: no second COUNT
    known = (
        sum(counts[s] for s in filters.status)
        if filters.status and set(filters.status) <= set(counts)
        else None
    )
    paginator = KnownCountPaginator(
        selectors.ticket_queue_for_agent(user=request.user, filters=filters, sort=sort), per_page, known
    )
    page = paginator.get_page(request.GET.get("page"))
    query = _without(request.GET, "page", "export")
    context = {
        "nav_active": "queue",
        "page": page,
        "filters": filters,
        "sort": sort,
        "sort_headers": sort_headers(
            request.GET, sort if sort.column else selectors.TicketSort.default_for(filters)
        ),
        "per_page": per_page,
        "page_sizes": selectors.PAGE_SIZES,
        "params": request.GET,
        "query": query.urlencode(),
        "counts": [(status, S(status).label, n) for status, n in counts.items()],
        "statuses": S.choices,
        "types": Ticket.Type.choices,
        "urgencies": Ticket.Urgency.choices,
        "sla_states": Ticket.SlaState.choices,
        "saved_views": selectors.saved_views_for_user(user=request.user),
        **selectors.queue_filter_options(user=request.user),
    }
    if request.htmx and request.htmx.target == "queue-results":
        return render(request, "tickets/partials/queue_results.html", context)
    return render(request, "tickets/queue.html", context)


def _export_row(ticket: Ticket) -> list[Any]:
    def moment(value: Any) -> str:
        return timezone.localtime(value).isoformat(timespec="minutes") if value else ""

    return [
        ticket.key,
        ticket.title,
        ticket.status,
        ticket.urgency,
        ticket.type,
        ticket.team.name,
        ticket.requester.username,
        ticket.assignee.username if ticket.assignee_id else "",
        ticket.sla_state,
        moment(ticket.sla_due),
        moment(ticket.created_at),
        moment(ticket.updated_at),
    ]


@login_required
@require_GET
def queue_export(request: HttpRequest) -> StreamingHttpResponse:
    """The queue as CSV: every row of the current filters in the current order (not just one page),
    streamed, cells guarded against spreadsheet formulas."""
    require_agent(request)
    filters = selectors.TicketFilters.from_params(request.GET, default_open=True)
    sort = selectors.TicketSort.from_param(request.GET.get("sort"))
    tickets = selectors.ticket_queue_for_agent(user=request.user, filters=filters, sort=sort)
    log.info("queue export by %s: %s", request.user.pk, _without(request.GET, "page").urlencode()[:300])
    # read from the replica when it serves (config/db_router.py), while the body streams (so no header can
    # say which: the source is chosen as the body starts, after the headers have gone; docs/scaling.md)
    # a chosen request type adds a column per field of it (tickets.request_types)
    custom = request_types.export_field_names(filters.request_type)
    rows = replica_reads_iter(
        lambda: (
            _export_row(ticket) + request_types.export_values(ticket, custom, viewer=request.user)
            for ticket in tickets.iterator(chunk_size=500)
        )
    )
    header = EXPORT_HEADER + [f"cf_{name}" for name in custom]
    response = StreamingHttpResponse(stream_csv(header, rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="requests-{stamp}.csv"'
    return response


@login_required
@require_POST
def queue_bulk(request: HttpRequest) -> HttpResponse:
    """Assign or move the checked tickets."""
    require_agent(request)
    form = forms.BulkForm(request.POST)
    keys = [k for k in request.POST.getlist("keys") if k]
    back = reverse("tickets:queue") + (
        "?" + request.POST.get("query", "") if request.POST.get("query") else ""
    )
    if not keys:
        messages.warning(request, _("Tick at least one request first."))
        return redirect(back)
    if not form.is_valid():
        messages.error(request, "; ".join(e for errs in form.errors.values() for e in errs))
        return redirect(back)
    tickets = list(selectors.tickets_visible_to(user=request.user).filter(key__in=keys))
    if form.cleaned_data["action"] == "assign":
        count = services.bulk_assign(tickets=tickets, by=request.user, assignee=form.cleaned_data["assignee"])
        messages.success(request, _("%(n)s requests assigned.") % {"n": count})
    else:
        moved, errors = services.bulk_transition(
            tickets=tickets, by=request.user, to=form.cleaned_data["to"], note=form.cleaned_data["note"]
        )
        messages.success(request, _("%(n)s requests moved.") % {"n": moved})
        for error in errors[:10]:
            messages.warning(request, error)
    return redirect(back)


@login_required
@require_POST
def saved_view_save_view(request: HttpRequest) -> HttpResponse:
    require_agent(request)
    form = forms.SavedViewForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the view a name."))
        return redirect("tickets:queue")
    data = form.cleaned_data
    try:
        view = services.saved_view_save(
            user=request.user, name=data["name"], query=data["query"], expected_version=data["version"]
        )
    except (EditConflict, VersionRequired) as exc:
        # Nothing saved: the stored view as it now is, and the choice to replace it or keep it.
        current = selectors.saved_view_get_for_user(user=request.user, name=data["name"])
        context = {
            "nav_active": "queue",
            "conflict": str(exc),
            "current": current,
            "form": forms.SavedViewForm(
                initial={"name": data["name"], "query": data["query"], "version": current.lock_version}
            ),
        }
        return render(request, "tickets/saved_view_conflict.html", context, status=conflict_status(exc))
    messages.success(request, _("View “%(name)s” saved.") % {"name": view.name})
    return redirect(reverse("tickets:queue") + ("?" + view.query if view.query else ""))


@login_required
@require_POST
def saved_view_delete_view(request: HttpRequest, view_id: int) -> HttpResponse:
    require_agent(request)
    if not services.saved_view_delete(user=request.user, view_id=view_id):
        raise Http404
    return redirect("tickets:queue")
