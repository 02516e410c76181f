"""Knowledge-base pages (HTML + htmx). Thin: the work is in services and selectors."""

import logging
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.concurrency import EditConflict, VersionRequired, conflict_status
from config.markdown import render_markdown
from knowledge_base import permissions, services
from knowledge_base.forms import ArticleForm, SendBackForm
from knowledge_base.models import Article
from knowledge_base.search import highlight_title
from knowledge_base.selectors import (
    ArticleFilters,
    article_get_for_user,
    article_helpful_counts,
    article_search_for_user,
    article_suggestions_for_title,
    article_version_get,
    article_versions_for_user,
    article_vote_of,
    articles_waiting_for_review,
    categories_with_counts,
    my_drafts,
    related_articles_for,
    stale_articles_for_owner,
    tickets_matching_for_agent,
    version_diff,
)

log = logging.getLogger(__name__)
PAGE_SIZE = 20


def _require_writer(request: HttpRequest) -> None:
    if not permissions.can_write_articles(request.user):
        raise PermissionDenied(_("Only support staff may write articles."))


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Search and browse: one box, filters, categories; htmx gets just the results."""
    filters = ArticleFilters.from_params(request.GET)
    search = article_search_for_user(user=request.user, filters=filters)
    page = search.paginator(PAGE_SIZE).get_page(request.GET.get("page"))
    results = [
        {
            "article": article,
            "title": highlight_title(article.title, search.terms, search.stems)
            if filters.q
            else article.title,
            "snippet": search.snippet(article) if filters.q else article.summary,
        }
        for article in page.object_list
    ]
    with_tickets = request.GET.get("mode") == "tickets" and permissions.can_search_tickets(request.user)
    context = {
        "nav_active": "kb",
        "filters": filters,
        "search": search,
        "page": page,
        "results": results,
        "with_tickets": with_tickets,
        "tickets": tickets_matching_for_agent(user=request.user, text=filters.q)
        if with_tickets and filters.q
        else [],
        "can_write": permissions.can_write_articles(request.user),
        "can_search_tickets": permissions.can_search_tickets(request.user),
        "kb_kinds": Article.Kind.choices,
        "kb_languages": Article.Language.choices,
        "kb_statuses": Article.Status.choices,
    }
    if request.htmx:
        return render(request, "knowledge_base/partials/results.html", context)
    context["categories"] = categories_with_counts(user=request.user)
    if context["can_write"]:
        context["drafts"] = list(my_drafts(user=request.user)[:10])
        context["to_review"] = list(articles_waiting_for_review(user=request.user)[:10])
    return render(request, "knowledge_base/index.html", context)


@login_required
@require_GET
def article_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The article, its helpful vote, related articles, and (from a suggestion) "this solved my problem"."""
    article = article_get_for_user(user=request.user, article_id=pk)
    services.article_record_view(article=article)
    from_suggestion = request.GET.get("from") == "suggest" and article.status == Article.Status.PUBLISHED
    staff = permissions.can_write_articles(request.user)
    context = {
        "nav_active": "kb",
        "article": article,
        "body_html": render_markdown(article.body),
        "related": related_articles_for(user=request.user, article=article),
        "helpful": article_helpful_counts(article=article),
        "my_vote": article_vote_of(article=article, user=request.user),
        "from_suggestion": from_suggestion,
        "query": request.GET.get("q", "")[:300],
        # Links to tickets and campaigns are for staff (a requester may not see another team's).
        "related_tickets": list(article.related_tickets.all()) if staff else [],
        "related_campaigns": list(article.related_campaigns.all()) if staff else [],
        "actions": _actions(request, article),
        "send_back_form": SendBackForm(),
    }
    return render(request, "knowledge_base/article.html", context)


def _actions(request: HttpRequest, article: Article) -> dict[str, bool]:
    user = request.user
    return {
        "edit": permissions.can_edit(user, article),
        "submit": permissions.can_submit(user, article),
        "publish": permissions.can_review(user, article),
        "send_back": permissions.can_review(user, article),
        "archive": permissions.can_archive(user, article),
        "reopen": permissions.can_reopen(user, article),
        "mark_reviewed": permissions.can_mark_reviewed(user, article),
        "history": permissions.can_view_history(user, article),
    }


@login_required
@require_http_methods(["GET", "POST"])
def article_new(request: HttpRequest) -> HttpResponse:
    _require_writer(request)
    form = ArticleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        article = services.article_create(author=request.user, **form.service_fields())
        messages.success(request, _("Draft saved."))
        return redirect("knowledge_base:article", pk=article.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "knowledge_base/edit.html",
        {"nav_active": "kb", "form": form, "article": None},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def article_edit(request: HttpRequest, pk: int) -> HttpResponse:
    article = article_get_for_user(user=request.user, article_id=pk)
    if not permissions.can_edit(request.user, article):
        raise PermissionDenied(_("Only drafts can be edited; reopen the article as a draft first."))
    form = ArticleForm(request.POST or None, instance=Article.objects.get(pk=article.pk))
    context = {"nav_active": "kb", "form": form, "article": article}
    status = 422 if request.method == "POST" else 200
    if request.method == "POST" and form.is_valid():
        try:
            services.article_update(
                article=article,
                by=request.user,
                expected_version=form.submitted_version(),
                **form.service_fields(),
            )
        except (EditConflict, VersionRequired) as exc:
            # Nothing saved: the form again, filled from the article as it now is.
            article = article_get_for_user(user=request.user, article_id=pk)
            current = ArticleForm(instance=article)
            context |= {
                "form": current,
                "article": article,
                "conflict": str(exc),
                "unsaved": form.unsaved_values(current),
            }
            status = conflict_status(exc)
        else:
            messages.success(request, _("Saved as a new version."))
            return redirect("knowledge_base:article", pk=article.pk)
    return render(request, "knowledge_base/edit.html", context, status=status)


@login_required
@require_POST
def markdown_preview(request: HttpRequest) -> HttpResponse:
    """The editor's live preview: sanitised HTML of the posted Markdown."""
    _require_writer(request)
    return render(
        request,
        "knowledge_base/partials/preview.html",
        {"html": render_markdown(request.POST.get("body", ""))},
    )


ACTIONS: dict[str, Callable[..., Article]] = {
    "submit": services.article_submit,
    "publish": services.article_publish,
    "archive": services.article_archive,
    "reopen": services.article_reopen,
    "mark-reviewed": services.article_mark_reviewed,
}
ACTION_MESSAGES = {
    "submit": gettext_lazy("Sent for review."),
    "publish": gettext_lazy("Published."),
    "archive": gettext_lazy("Archived."),
    "reopen": gettext_lazy("Back to draft."),
    "mark-reviewed": gettext_lazy("Marked as reviewed."),
    "send-back": gettext_lazy("Sent back to the author."),
}


@login_required
@require_POST
def article_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """One workflow step (submit, publish, send back, archive, reopen, mark reviewed)."""
    article = article_get_for_user(user=request.user, article_id=pk)
    if action == "send-back":
        form = SendBackForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Say what needs to change."))
            return redirect("knowledge_base:article", pk=pk)
        services.article_send_back(article=article, by=request.user, note=form.cleaned_data["note"])
    elif action in ACTIONS:
        ACTIONS[action](article=article, by=request.user)
    else:
        raise Http404("No such action.")
    messages.success(request, ACTION_MESSAGES[action])
    return redirect("knowledge_base:article", pk=pk)


@login_required
@require_GET
def article_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every version, and the diff between any two (?a=&b=)."""
    article = article_get_for_user(user=request.user, article_id=pk)
    versions = list(article_versions_for_user(user=request.user, article=article))
    diff = old = new = None
    if len(versions) >= 2:
        a = request.GET.get("a", str(versions[1].number))
        b = request.GET.get("b", str(versions[0].number))
        by_number = {v.number: v for v in versions}
        old, new = by_number.get(int(a) if a.isdigit() else -1), by_number.get(int(b) if b.isdigit() else -1)
        if old is None or new is None:
            raise Http404("No such version.")
        diff = version_diff(old=old, new=new)
    context = {
        "nav_active": "kb",
        "article": article,
        "versions": versions,
        "diff": diff,
        "old": old,
        "new": new,
        "can_restore": permissions.can_restore(request.user, article),
    }
    return render(request, "knowledge_base/history.html", context)


@login_required
@require_POST
def article_restore(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    article = article_get_for_user(user=request.user, article_id=pk)
    version = article_version_get(user=request.user, article=article, number=number)
    services.article_restore_version(article=article, version=version, by=request.user)
    messages.success(request, _("Version %(n)s restored as a new draft.") % {"n": number})
    return redirect("knowledge_base:article", pk=pk)


@login_required
@require_POST
def article_helpful(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Was this helpful?" — yes or no; htmx gets the updated box."""
    article = article_get_for_user(user=request.user, article_id=pk)
    answer = request.POST.get("helpful")
    if answer not in ("yes", "no"):
        return HttpResponse(status=400)
    services.article_vote(article=article, user=request.user, helpful=answer == "yes")
    context = {
        "article": article,
        "helpful": article_helpful_counts(article=article),
        "my_vote": answer == "yes",
    }
    if request.htmx:
        return render(request, "knowledge_base/partials/helpful.html", context)
    messages.success(request, _("Thank you for your feedback."))
    return redirect("knowledge_base:article", pk=pk)


@login_required
@require_GET
def suggest(request: HttpRequest) -> HttpResponse:
    """Up to five published articles for the title being typed on the new-request form (a partial)."""
    title = request.GET.get("title", "")
    search = article_suggestions_for_title(user=request.user, title=title)
    suggestions = [
        {"article": a, "title": highlight_title(a.title, search.terms, search.stems)} for a in search.queryset
    ]
    return render(
        request,
        "knowledge_base/partials/suggestions.html",
        {"suggestions": suggestions, "query": search.query},
    )


@login_required
@require_POST
def article_solved(request: HttpRequest, pk: int) -> HttpResponse:
    """ "This solved it": record a deflection and send the requester to a thank-you page (no ticket)."""
    article = article_get_for_user(user=request.user, article_id=pk)
    source = "article" if request.POST.get("source") == "article" else "suggestion"
    query = request.POST.get("q") or request.GET.get("q") or ""
    services.deflection_record(user=request.user, article=article, query=query, source=source)
    url = reverse("knowledge_base:thanks", args=[article.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
@require_GET
def deflection_thanks(request: HttpRequest, pk: int) -> HttpResponse:
    article = article_get_for_user(user=request.user, article_id=pk)
    return render(request, "knowledge_base/thanks.html", {"nav_active": "kb", "article": article})


@login_required
@require_POST
def article_from_ticket_view(request: HttpRequest, key: str) -> HttpResponse:
    """One click on a resolved ticket: its retrospective becomes a draft article; open the editor."""
    _require_writer(request)
    from tickets.selectors import ticket_get_for_user

    ticket = ticket_get_for_user(user=request.user, key=key)
    try:
        article = services.article_from_ticket(ticket=ticket, by=request.user)
    except services.ArticleActionNotAllowed as exc:
        messages.error(request, str(exc))
        back = request.META.get("HTTP_REFERER", "")
        if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect("knowledge_base:index")
    messages.success(request, _("Draft article created from the ticket's retrospective."))
    return redirect("knowledge_base:article_edit", pk=article.pk)


@login_required
@require_GET
def stale_list(request: HttpRequest) -> HttpResponse:
    """Published articles of mine not reviewed for 180 days."""
    _require_writer(request)
    articles = Paginator(stale_articles_for_owner(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "knowledge_base/stale.html", {"nav_active": "kb", "page": articles})
