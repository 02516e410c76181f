"""Customer and tag pages (HTML + htmx). Thin: forms in, services and selectors do the work."""

import json
import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.concurrency import EditConflict, VersionRequired, conflict_status
from config.csv_import import ImportRejected
from crm_tags import forms, permissions, rule_builder, selectors, services
from crm_tags.models import Tag, TagVersion
from crm_tags.rules import RuleInvalid
from crm_tags.tag_api import draft_version, members_csv_response
from privacy import consent, personal_data

log = logging.getLogger(__name__)

STARTER_RULE = {
    "all": [
        {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},
    ]
}


def _require_editor(request: HttpRequest) -> None:
    if not permissions.can_edit_tags(request.user):
        raise PermissionDenied


# --- customers ------------------------------------------------------------------------------------


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Customers: search and tag filter; contact data masked without view_pii."""
    tags = list(selectors.tags_visible_to(request.user))
    form = forms.CustomerFilterForm(request.GET or None, tags=tags)
    q = tag = ""
    signup_month = None
    if form.is_valid():
        q, tag, signup_month = (
            form.cleaned_data["q"],
            form.cleaned_data["tag"],
            form.cleaned_data["signup_month"],
        )
    customers = selectors.customers_for_user(user=request.user, q=q, tag=tag, signup_month=signup_month)
    page = Paginator(customers, 25).get_page(request.GET.get("page"))
    selectors.customers_shown(page.object_list, user=request.user, what="customers page")
    context = {"nav_active": "customers", "form": form, "page": page, "q": q, "tag": tag}
    context["can_import"] = permissions.can_import(request.user)
    if request.htmx:
        return render(request, "crm_tags/partials/customer_rows.html", context)
    return render(request, "crm_tags/index.html", context)


@login_required
@require_GET
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    """A customer: attributes (masked as needed), tags with since-dates, the event timeline."""
    customer = selectors.customer_get_for_user(user=request.user, external_id=external_id)
    events = Paginator(selectors.customer_events(customer=customer), 50).get_page(request.GET.get("page"))
    context = {
        "nav_active": "customers",
        "customer": customer,
        "memberships": list(selectors.customer_tags(customer=customer)),
        "events": events,
    }
    if request.htmx:
        return render(request, "crm_tags/partials/event_timeline.html", context)
    return render(request, "crm_tags/customer_detail.html", context)


# --- tags -----------------------------------------------------------------------------------------


def _tag_context(request: HttpRequest, tag: Tag | None = None) -> dict[str, Any]:
    return {
        "nav_active": "customers",
        "tree": selectors.tag_tree(user=request.user),
        "current_tag": tag,
        "can_edit": permissions.can_edit_tags(request.user),
    }


@login_required
@require_GET
def tag_list(request: HttpRequest) -> HttpResponse:
    """The tag tree, and a form to add a tag (agents)."""
    context = _tag_context(request) | {"form": forms.TagCreateForm()}
    return render(request, "crm_tags/tag_list.html", context)


@login_required
@require_POST
def tag_create(request: HttpRequest) -> HttpResponse:
    _require_editor(request)
    form = forms.TagCreateForm(request.POST)
    if form.is_valid():
        try:
            tag = services.tag_create(**form.cleaned_data, by=request.user)
        except services.TagError as exc:
            form.add_error("slug", str(exc))
        else:
            messages.success(request, _("Tag %(name)s created.") % {"name": tag.name})
            return redirect("crm_tags:tag_detail", slug=tag.slug)
    return render(request, "crm_tags/tag_list.html", _tag_context(request) | {"form": form}, status=422)


def _tag_page(
    request: HttpRequest,
    tag: Tag,
    *,
    rule_form: forms.RuleForm | None = None,
    rule_errors: list[dict] | None = None,
    status: int = 200,
    conflict: str = "",
    unsaved: list[tuple[str, str]] | None = None,
) -> HttpResponse:
    versions = list(tag.versions.all())
    latest: TagVersion | None = versions[0] if versions else None
    if rule_form is None:
        definition = (
            personal_data.definition_for(latest.definition, viewer=request.user) if latest else STARTER_RULE
        )
        rule_form = forms.RuleForm(
            initial={"definition": json.dumps(definition, ensure_ascii=False, indent=2)}
        )
    publish_form = forms.PublishForm(
        tag=tag,
        initial={
            "version": latest.number if latest else None,
            "rollout_percent": tag.rollout_percent or 10,
        },
    )
    builds = list(selectors.tag_builds(tag=tag)[:10])
    base = _tag_context(request, tag)
    context = base | {
        "tag": tag,
        "versions": versions,
        "rule_form": rule_form,
        "rule_errors": rule_errors or [],
        "publish_form": publish_form,
        "upload_form": forms.UploadForm(),
        "builds": builds,
        "has_active": any(b.status in ("queued", "running") for b in builds),
        "builder_i18n": rule_builder.builder_labels(
            tags=[t for _category, members in base["tree"] for t in members if t.pk != tag.pk]
        ),
        "can_release_all": permissions.can_release(request.user, 100),
        "conflict": conflict,
        "unsaved": unsaved or [],
    }
    return render(request, "crm_tags/tag_detail.html", context, status=status)


@login_required
@require_GET
def tag_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A tag: rule builder, preview, release controls and build history."""
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    return _tag_page(request, tag)


@login_required
@require_POST
def tag_version_save(request: HttpRequest, slug: str) -> HttpResponse:
    _require_editor(request)
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    form = forms.RuleForm(request.POST)
    if not form.is_valid():
        return _tag_page(request, tag, rule_form=form, status=422)
    try:
        # the draft's version: the newest rule number the editor started from (`base_version`: older pages)
        base = (request.POST.get("version") or request.POST.get("base_version") or "").strip()
        if not base:
            raise VersionRequired()
        version = services.tag_version_create(
            tag=tag,
            definition=form.cleaned_data["definition"],
            by=request.user,
            base_version=draft_version(base),
        )
    except RuleInvalid as exc:
        return _tag_page(
            request, tag, rule_form=form, rule_errors=[e.as_dict() for e in exc.errors], status=422
        )
    except personal_data.PersonalRuleForbidden as exc:
        form.add_error(None, str(exc))
        return _tag_page(request, tag, rule_form=form, status=403)
    except services.TagError as exc:
        form.add_error(None, str(exc))
        return _tag_page(request, tag, rule_form=form, status=422)
    except (EditConflict, VersionRequired) as exc:
        # Nothing saved: the page again with the newest rule, and the rule the editor had written.
        tag = selectors.tag_get_for_user(user=request.user, slug=slug)
        return _tag_page(
            request,
            tag,
            status=conflict_status(exc),
            conflict=str(exc),
            unsaved=[(str(form.fields["definition"].label), request.POST.get("definition", ""))],
        )
    messages.success(request, _("Saved version %(n)d.") % {"n": version.number})
    return redirect("crm_tags:tag_detail", slug=tag.slug)


@login_required
@require_POST
def tag_preview(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx: the preview panel for the rule in the form."""
    _require_editor(request)
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    form = forms.RuleForm(request.POST)
    context: dict[str, Any] = {"tag": tag, "form": form}
    if not form.is_valid():
        return render(request, "crm_tags/partials/preview.html", context, status=422)
    try:
        personal_data.check_rule_allowed(form.cleaned_data["definition"], viewer=request.user)
    except personal_data.PersonalRuleForbidden as exc:
        context["forbidden"] = str(exc)
        return render(request, "crm_tags/partials/preview.html", context, status=403)
    try:
        services.rule_check(tag=tag, definition=form.cleaned_data["definition"])
        context["preview"] = selectors.tag_preview(
            tag=tag,
            definition=form.cleaned_data["definition"],
            user=request.user,
            as_of=form.cleaned_data["as_of"],
            preview_id=form.cleaned_data["preview_id"],
        )
    except RuleInvalid as exc:
        context["rule_errors"] = [e.as_dict() for e in exc.errors]
        return render(request, "crm_tags/partials/preview.html", context, status=422)
    except selectors.PreviewCancelled:
        context["cancelled"] = True
    if "preview" in context:
        context["labels"] = list(context["preview"].sample[0]["values"]) if context["preview"].sample else []
    return render(request, "crm_tags/partials/preview.html", context)


@login_required
@require_POST
def tag_publish(request: HttpRequest, slug: str) -> HttpResponse:
    """Release a version at P % (P = 100 needs a manager); the build runs on Celery."""
    _require_editor(request)
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    form = forms.PublishForm(request.POST, tag=tag)
    if not form.is_valid():
        messages.error(request, _("Choose a version and a percentage from 0 to 100."))
        return redirect("crm_tags:tag_detail", slug=tag.slug)
    try:
        build = services.tag_publish(
            tag=tag,
            version_number=form.cleaned_data["version"],
            rollout_percent=form.cleaned_data["rollout_percent"],
            by=request.user,
        )
    except PermissionDenied:
        messages.error(request, _("Only a manager may release a tag to everyone."))
        return redirect("crm_tags:tag_detail", slug=tag.slug)
    except (services.TagError, RuleInvalid) as exc:
        messages.error(request, str(exc))
        return redirect("crm_tags:tag_detail", slug=tag.slug)
    messages.success(
        request,
        _("Version %(v)d released to %(p)d %%; build %(b)d queued.")
        % {"v": form.cleaned_data["version"], "p": form.cleaned_data["rollout_percent"], "b": build.pk},
    )
    return redirect("crm_tags:tag_detail", slug=tag.slug)


@login_required
@require_POST
def tag_rollback(request: HttpRequest, slug: str) -> HttpResponse:
    _require_editor(request)
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    try:
        services.tag_rollback(tag=tag, version_number=int(request.POST.get("version", "0")), by=request.user)
    except PermissionDenied:
        messages.error(request, _("Only a manager may release a tag to everyone."))
    except (ValueError, services.TagError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Rolled back; a build is queued."))
    return redirect("crm_tags:tag_detail", slug=tag.slug)


@login_required
@require_GET
def tag_builds(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx: the build history (polled while a build is queued or running)."""
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    tag.refresh_from_db()
    builds = list(selectors.tag_builds(tag=tag)[:10])
    has_active = any(b.status in ("queued", "running") for b in builds)
    return render(
        request, "crm_tags/partials/builds.html", {"tag": tag, "builds": builds, "has_active": has_active}
    )


@login_required
@require_GET
def tag_members(request: HttpRequest, slug: str) -> HttpResponse:
    """A tag's members (masked without view_pii), with a CSV export."""
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    page = Paginator(selectors.tag_members(tag=tag), 50).get_page(request.GET.get("page"))
    selectors.customers_shown(
        [m.customer for m in page.object_list], user=request.user, kind="tag_members", what=f"tag {tag.slug}"
    )
    context = _tag_context(request, tag) | {"tag": tag, "page": page}
    return render(request, "crm_tags/tag_members.html", context)


@login_required
@require_GET
def tag_members_csv(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """The members CSV; `?purpose=marketing_email` (sms, push) keeps only whom that channel may reach."""
    try:
        purpose = consent.channel_purpose(request.GET.get("purpose"))
    except consent.ConsentInvalid as exc:
        return HttpResponseBadRequest(f"{exc.key}: {exc.message}", content_type="text/plain; charset=utf-8")
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    return members_csv_response(tag, request.user, purpose=purpose)


@login_required
@require_POST
def tag_upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Replace a manual tag's members with an uploaded list of external ids."""
    _require_editor(request)
    tag = selectors.tag_get_for_user(user=request.user, slug=slug)
    form = forms.UploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            build = services.tag_members_upload(tag=tag, upload=form.cleaned_data["file"], by=request.user)
        except ImportRejected as exc:
            for error in exc.errors[:20]:
                messages.error(
                    request, _("Row %(row)d: %(message)s") % {"row": error.row, "message": error.message}
                )
        except services.TagError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("%(n)d members uploaded.") % {"n": build.members})
    return redirect("crm_tags:tag_detail", slug=tag.slug)
