"""Request pages (HTML + htmx). Views stay thin: forms in, services and selectors do the work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from config.concurrency import (
    CONFLICT_STATUSES,
    EditConflict,
    VersionRequired,
    conflict_status,
)
from config.markdown import render_markdown
from tickets import forms, permissions, request_type_forms, selectors, services
from tickets.models import SolutionPlan, Ticket, TicketLink

log = logging.getLogger(__name__)
S = Ticket.Status

TRANSITION_LABELS: dict[str, str] = {
    S.TRIAGED: gettext_lazy("Triage"),
    S.ANALYSIS: gettext_lazy("Start analysis"),
    S.IN_PROGRESS: gettext_lazy("Start work"),
    S.WAITING_ON_REQUESTER: gettext_lazy("Ask the requester"),
    S.TESTING: gettext_lazy("Move to testing"),
    S.AWAITING_ACCEPTANCE: gettext_lazy("Deliver for acceptance"),
    S.RESOLVED: gettext_lazy("Accept delivered work"),
    S.REJECTED: gettext_lazy("Reject request"),
    S.CANCELLED: gettext_lazy("Cancel request"),
}
NEEDS_REASON = {S.REJECTED}


def require_agent(request: HttpRequest) -> None:
    if not permissions.can_work(request.user):
        raise PermissionDenied


def apply_errors(form: Any, exc: DjangoValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- requester pages --------------------------------------------------------------------------------


@login_required
@require_GET
def my_requests(request: HttpRequest) -> HttpResponse:
    """My team's requests with chips open / waiting on me / done and a search box (key, title, description)."""
    chip = request.GET.get("chip", "")
    if chip not in selectors.MY_CHIPS:
        chip = ""
    q = str(request.GET.get("q") or "").strip()[:200]
    page = Paginator(selectors.tickets_for_my_team(user=request.user, chip=chip, q=q), 25).get_page(
        request.GET.get("page")
    )
    context = {
        "nav_active": "requests",
        "page": page,
        "chip": chip,
        "q": q,
        "query": urlencode({k: v for k, v in (("chip", chip), ("q", q)) if v}),
        "chip_counts": selectors.my_team_chip_counts(user=request.user),
    }
    if request.htmx:
        return render(request, "tickets/partials/my_requests_table.html", context)
    return render(request, "tickets/my_requests.html", context)


@login_required
def ticket_new(request: HttpRequest) -> HttpResponse:
    """The "New request" form."""
    form = forms.TicketCreateForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = services.ticket_create(
                requester=data.get("on_behalf_of") or request.user,
                channel=data.get("channel") or Ticket.Channel.WEB,
                by=request.user,
                title=data["title"],
                description=data["description"],
                type=data["type"],
                urgency=data["urgency"],
                campaign=data["campaign"],
                requested_due=data["requested_due"],
                files=data["attachments"],
                request_type=data.get("request_type"),
                custom_fields=request_type_forms.custom_values(form),
            )
        except DjangoValidationError as exc:
            if request_type_forms.custom_errors_apply(form, exc):
                pass
            elif hasattr(exc, "error_dict"):  # type / urgency / request type: under their fields
                apply_errors(form, exc)
            else:
                form.add_error("attachments" if exc.code in ("too_large", "bad_type") else None, exc.messages)
        else:
            messages.success(request, _("Request %(key)s filed.") % {"key": ticket.key})
            return redirect(ticket)
    status = 400 if request.method == "POST" else 200
    return render(request, "tickets/new.html", {"nav_active": "requests", "form": form}, status=status)


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """Rendered, sanitised Markdown for the description preview (htmx)."""
    html = render_markdown(request.POST.get("description", "") or request.POST.get("body", ""))
    # render_markdown's output is sanitised by its allow-list
    return HttpResponse(format_html('<div class="markdown-body">{}</div>', mark_safe(html)))  # noqa: S308


# --- the ticket page ----------------------------------------------------------------------------------


def _acceptance_note(user: Any, ticket: Ticket, allowed: list[str]) -> str:
    """Why someone on the requesting side sees no accept button: they worked on the request."""
    if ticket.status != S.AWAITING_ACCEPTANCE or S.RESOLVED in allowed:
        return ""
    if permissions.TEAM not in permissions.sides_of(user, ticket) or not permissions.worked_on(user, ticket):
        return ""
    return permissions.acceptance_refusal(user, ticket) or ""


def _detail_context(request: HttpRequest, ticket: Ticket, **forms_in: Any) -> dict[str, Any]:
    user = request.user
    is_agent = permissions.can_work(user)
    plan = SolutionPlan.objects.filter(ticket=ticket).select_related("reviewed_by", "author").first()
    retrospective = getattr(ticket, "retrospective", None) if hasattr(ticket, "retrospective") else None
    rating = getattr(ticket, "rating", None) if hasattr(ticket, "rating") else None
    allowed = permissions.allowed_transitions(user, ticket)
    steps = []
    for to in allowed:
        label = TRANSITION_LABELS.get(to, S(to).label)
        if ticket.status == S.AWAITING_ACCEPTANCE and to == S.IN_PROGRESS:
            label = _("Reject delivered work")
        elif ticket.status == S.RESOLVED and to == S.IN_PROGRESS:
            label = _("Reopen")
        elif ticket.status == S.WAITING_ON_REQUESTER:
            label = _("Resume")
        needs = []
        if ticket.status == S.NEW and to == S.TRIAGED:
            needs = ["feasibility", "feasibility_note", "assignee"]
        elif to == S.WAITING_ON_REQUESTER:
            needs = ["note"]
        elif to in NEEDS_REASON or (
            to == S.IN_PROGRESS and ticket.status in (S.AWAITING_ACCEPTANCE, S.RESOLVED)
        ):
            needs = ["reason"]
        form = forms.TransitionForm(initial={"to": to}, prefix=f"t-{to}")
        steps.append({"to": to, "label": label, "needs": needs, "form": form})
    context = {
        "nav_active": "queue" if is_agent else "requests",
        "ticket": ticket,
        "is_agent": is_agent,
        "is_manager": permissions.can_approve_plan(user),
        "steps": steps,
        "comments": selectors.comments_for_user(user=user, ticket=ticket),
        "events": selectors.events_for_user(user=user, ticket=ticket),
        "files": selectors.attachments_for_ticket(user=user, ticket=ticket).filter(comment__isnull=True),
        "links": selectors.links_for_ticket(ticket=ticket),
        "plan": plan,
        "rating": rating,
        "retrospective": retrospective,
        "description_html": render_markdown(ticket.description),
        "comment_form": forms.CommentForm(can_note=is_agent),
        "can_rate": permissions.can_rate(user, ticket) and rating is None,
        "acceptance_note": _acceptance_note(user, ticket, allowed),
        "watching": ticket.watchers.filter(pk=user.pk).exists(),
    }
    if is_agent:
        context.update(
            {
                "triage_form": forms.TriageForm(instance=ticket, user=user),
                "assign_form": forms.AssignForm(
                    initial={"assignee": ticket.assignee.username if ticket.assignee else None}
                ),
                "plan_form": forms.PlanForm(initial=forms.PlanForm.initial_from(plan)),
                "review_form": forms.PlanReviewForm(),
                "link_form": forms.LinkForm(),
                "retro_form": forms.RetrospectiveForm(instance=retrospective),
                "canned_replies": selectors.canned_replies(),
            }
        )
    if context["can_rate"]:
        context["rating_form"] = forms.RatingForm()
    context.update(forms_in)
    return context


def _render_ticket(request: HttpRequest, ticket: Ticket, status: int = 200, **forms_in: Any) -> HttpResponse:
    """The whole page, or for htmx just the ticket body (every action re-renders it in place)."""
    ticket = selectors.ticket_get_for_user(user=request.user, key=ticket.key)
    context = _detail_context(request, ticket, **forms_in)
    if request.htmx:
        # htmx swaps the body on success and on a refused edit (static/js/martech.js lets 409/428 swap)
        return render(
            request,
            "tickets/partials/ticket_body.html",
            context,
            status=status if status in CONFLICT_STATUSES else 200,
        )
    return render(request, "tickets/detail.html", context, status=status)


def _refused(request: HttpRequest, ticket: Ticket, reason: str) -> HttpResponse:
    """A step this person may not take: the ticket again with the reason (403; htmx swaps it in place)."""
    if not reason:
        raise PermissionDenied
    messages.error(request, reason)
    return _render_ticket(request, ticket, status=403)


def _after_action(request: HttpRequest, ticket: Ticket, message: str = "") -> HttpResponse:
    if request.htmx:
        return _render_ticket(request, ticket)
    if message:
        messages.success(request, message)
    return redirect(ticket)


@login_required
@require_GET
def ticket_detail(request: HttpRequest, key: str) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    return _render_ticket(request, ticket)


@login_required
@require_POST
def ticket_transition_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    to = request.POST.get("to", "")
    form = forms.TransitionForm(request.POST, prefix=f"t-{to}" if f"t-{to}-to" in request.POST else None)
    if not form.is_valid():
        messages.error(request, _("Check the form."))
        return _after_action(request, ticket)
    data = form.cleaned_data
    try:
        services.ticket_transition(
            ticket=ticket,
            to=data["to"],
            by=request.user,
            note=data["note"],
            reason=data["reason"],
            feasibility=data["feasibility"],
            feasibility_note=data["feasibility_note"],
            assignee=data["assignee"],
        )
    except services.TransitionForbidden as exc:
        return _refused(request, ticket, str(exc))
    except services.TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return _after_action(request, ticket) if request.htmx else HttpResponse(str(exc), status=409)
    except services.TransitionDataMissing as exc:
        for message in exc.errors.values():
            messages.error(request, message)
        return _render_ticket(request, ticket, status=400)
    return _after_action(request, ticket, _("Request moved to %(status)s.") % {"status": S(data["to"]).label})


@login_required
@require_POST
def comment_add_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = forms.CommentForm(request.POST, request.FILES, can_note=permissions.can_see_internal(request.user))
    if form.is_valid():
        try:
            services.comment_add(
                ticket=ticket,
                by=request.user,
                body=form.cleaned_data["body"],
                internal=form.cleaned_data.get("internal", False),
                files=form.cleaned_data["attachments"],
            )
        except DjangoValidationError as exc:
            form.add_error("attachments" if exc.code in ("too_large", "bad_type") else None, exc.messages)
        else:
            return _after_action(request, ticket, _("Reply added."))
    return _render_ticket(request, ticket, status=400, comment_form=form)


@login_required
@require_POST
def triage_view(request: HttpRequest, key: str) -> HttpResponse:
    require_agent(request)
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = forms.TriageForm(request.POST, instance=Ticket.objects.get(pk=ticket.pk), user=request.user)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, triage_form=form)
    try:
        services.ticket_update_triage(
            ticket=ticket,
            by=request.user,
            expected_version=form.submitted_version(),
            **{f: form.cleaned_data[f] for f in form.Meta.fields},
        )
    except (EditConflict, VersionRequired) as exc:
        # Nothing saved: the triage form again, filled from the ticket as it now is.
        current = forms.TriageForm(instance=Ticket.objects.get(pk=ticket.pk), user=request.user)
        return _render_ticket(
            request,
            ticket,
            status=conflict_status(exc),
            triage_form=current,
            triage_conflict=str(exc),
            triage_unsaved=form.unsaved_values(current),
        )
    return _after_action(request, ticket, _("Triage saved."))


@login_required
@require_POST
def assign_view(request: HttpRequest, key: str) -> HttpResponse:
    require_agent(request)
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = forms.AssignForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, assign_form=form)
    services.ticket_assign(ticket=ticket, by=request.user, assignee=form.cleaned_data["assignee"])
    return _after_action(request, ticket, _("Assignee saved."))


@login_required
@require_POST
def plan_view(request: HttpRequest, key: str) -> HttpResponse:
    require_agent(request)
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = forms.PlanForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, plan_form=form)
    try:
        services.plan_save(
            ticket=ticket,
            by=request.user,
            implementation_path=form.cleaned_data["implementation_path"],
            milestones=form.milestones(),
            resources=form.cleaned_data["resources"],
            submit=form.cleaned_data["submit"],
            signoffs=form.cleaned_data.get("signoffs") or None,
        )
    except DjangoValidationError as exc:  # milestones out of order, a sign-off nobody can give
        apply_errors(form, exc)
        return _render_ticket(request, ticket, status=400, plan_form=form)
    return _after_action(request, ticket, _("Plan saved."))


@login_required
@require_POST
def plan_review_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    if not permissions.can_approve_plan(request.user):
        raise PermissionDenied
    form = forms.PlanReviewForm(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, review_form=form)
    try:
        services.plan_review(
            ticket=ticket,
            by=request.user,
            approve=form.cleaned_data["decision"] == "approve",
            note=form.cleaned_data["note"],
        )
    except services.TicketConflict as exc:
        messages.error(request, str(exc))
    except DjangoValidationError as exc:
        apply_errors(form, exc)
        return _render_ticket(request, ticket, status=400, review_form=form)
    return _after_action(request, ticket, _("Plan reviewed."))


@login_required
@require_POST
def link_add_view(request: HttpRequest, key: str) -> HttpResponse:
    require_agent(request)
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = forms.LinkForm(request.POST)
    if form.is_valid():
        try:
            services.link_add(
                ticket=ticket,
                by=request.user,
                target_key=form.cleaned_data["target"],
                kind=form.cleaned_data["kind"],
            )
        except DjangoValidationError as exc:
            apply_errors(form, exc)
        else:
            return _after_action(request, ticket, _("Link added."))
    return _render_ticket(request, ticket, status=400, link_form=form)


@login_required
@require_POST
def link_remove_view(request: HttpRequest, key: str, link_id: int) -> HttpResponse:
    require_agent(request)
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    link = get_object_or_404(TicketLink.objects.select_related("source", "target"), pk=link_id, source=ticket)
    services.link_remove(link=link, by=request.user)
    return _after_action(request, ticket, _("Link removed."))


@login_required
@require_POST
def rate_view(request: HttpRequest, key: str) -> HttpResponse:
    return _form_action(
        request, key, forms.RatingForm, "rating_form", services.rating_submit, _("Thank you for your rating.")
    )


@login_required
@require_POST
def retrospective_view(request: HttpRequest, key: str) -> HttpResponse:
    require_agent(request)
    return _form_action(
        request,
        key,
        forms.RetrospectiveForm,
        "retro_form",
        services.retrospective_save,
        _("Retrospective saved."),
    )


def _form_action(
    request: HttpRequest, key: str, form_class: type, form_name: str, action: Callable, done: str
) -> HttpResponse:
    """A form of the ticket page handed to a service: the page again with the form's errors (400),
    or the ticket after the action (a conflict is shown as a message)."""
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    form = form_class(request.POST)
    if not form.is_valid():
        return _render_ticket(request, ticket, status=400, **{form_name: form})
    try:
        action(ticket=ticket, by=request.user, **form.cleaned_data)
    except services.TicketConflict as exc:
        messages.error(request, str(exc))
    except PermissionDenied as exc:
        return _refused(request, ticket, str(exc))
    return _after_action(request, ticket, done)


@login_required
@require_POST
def watch_view(request: HttpRequest, key: str) -> HttpResponse:
    ticket = selectors.ticket_get_for_user(user=request.user, key=key)
    watching = services.watcher_toggle(ticket=ticket, user=request.user)
    return _after_action(
        request,
        ticket,
        _("You follow this request.") if watching else _("You no longer follow this request."),
    )


@login_required
@require_GET
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    """Serve a file only to people who may see its ticket (and its note, when internal)."""
    attachment = selectors.attachment_get_for_user(user=request.user, pk=pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    inline = attachment.content_type.startswith("image/") or attachment.content_type == "application/pdf"
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
