"""Customer and event imports in the browser: upload, a job page whose progress htmx polls, the bad rows
(paginated) and their CSV. Thin: crm_tags.import_jobs does the work and scopes every read to its owner."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from config.csv_export import stream_csv
from crm_tags import import_jobs, permissions
from crm_tags.import_forms import ImportUploadForm
from crm_tags.models import ImportJob

ERRORS_PER_PAGE = 50


def _require_importer(request: HttpRequest) -> None:
    if not permissions.can_import(request.user):
        raise PermissionDenied(_("You may not import customers or events."))


@login_required
@require_http_methods(["GET", "POST"])
def imports(request: HttpRequest) -> HttpResponse:
    """The upload form and the user's latest imports; a valid upload queues its job and opens its page."""
    _require_importer(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = import_jobs.import_job_create(
            kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], by=request.user
        )
        return redirect("crm_tags:import_job", pk=job.pk)
    context = {
        "nav_active": "customers",
        "form": form,
        "jobs": list(import_jobs.import_jobs_for_user(user=request.user)),
    }
    return render(request, "crm_tags/imports.html", context, status=422 if form.errors else 200)


def _status_context(request: HttpRequest, job: ImportJob) -> dict:
    errors = import_jobs.import_job_errors_for(job, viewer=request.user) if job.errors else []
    return {
        "job": job,
        "progress": import_jobs.import_job_progress(job),
        "errors_page": Paginator(errors, ERRORS_PER_PAGE).get_page(request.GET.get("page")),
    }


@login_required
@require_GET
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    """One import: progress while it runs, then its summary or its bad rows."""
    job = import_jobs.import_job_get_for_user(user=request.user, pk=pk)
    context = {"nav_active": "customers", **_status_context(request, job)}
    if request.htmx:
        return render(request, "crm_tags/partials/import_job_status.html", context)
    return render(request, "crm_tags/import_job.html", context)


@login_required
@require_GET
def import_job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The status partial htmx polls every second while the job is queued or running."""
    job = import_jobs.import_job_get_for_user(user=request.user, pk=pk)
    return render(request, "crm_tags/partials/import_job_status.html", _status_context(request, job))


@login_required
@require_GET
def import_job_errors_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The bad rows as CSV (row, column, message), masked as the page masks them."""
    job = import_jobs.import_job_get_for_user(user=request.user, pk=pk)
    rows = import_jobs.import_job_error_rows(job, viewer=request.user)
    response = StreamingHttpResponse(
        stream_csv([_("row"), _("column"), _("message")], rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
