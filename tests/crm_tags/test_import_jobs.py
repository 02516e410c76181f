"""Customer and event imports in the browser: upload → Celery job (eager) → progress → summary or bad
rows, the error file, masking of personal values in errors, permissions and bad input."""

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from django.urls import reverse
from django.utils import timezone

from crm_tags import import_jobs, importers
from crm_tags.models import Customer, Event, ImportJob
from tests.conftest import in_english

pytestmark = pytest.mark.django_db

HEADER = "external_id,name,email,phone,city,gender,birth_date,signup_at,source_channel\n"
PLANTED_EMAIL = "zhang.wei@example.com"
PLANTED_PHONE = "13812345678"


@pytest.fixture
def importer(make_user, support_team):
    return in_english(make_user("ivy", role="agent", team=support_team.name))


@pytest.fixture
def known_customers(db) -> None:
    importers.import_customers(io.StringIO(HEADER + "K1,Kim,,,Shanghai,f,,,web\nK2,Lee,,,Beijing,m,,,app\n"))


def _csv(text: str, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _upload(client, kind: str, upload: SimpleUploadedFile, capture):
    with capture(execute=True):
        return client.post(reverse("crm_tags:imports"), {"kind": kind, "file": upload})


# --- upload → job → summary ---------------------------------------------------------------------------


def test_a_customer_file_uploaded_in_the_browser_is_imported_with_a_summary(
    client_for, importer, known_customers, django_capture_on_commit_callbacks
):
    # given K1 changed, K2 repeated as it is, and a new N1
    text = HEADER + "K1,Kim Park,,,Shanghai,f,,,web\nK2,Lee,,,Beijing,m,,,app\nN1,Ned,,,Hangzhou,m,,,web\n"
    client = client_for(importer)
    # when the importer uploads it
    response = _upload(client, "customers", _csv(text), django_capture_on_commit_callbacks)
    # then the job page shows it done with added, updated and unchanged counted apart
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "crm_tags:import_job", args=[job.pk]
    )
    assert (job.status, job.rows_read, job.added, job.updated, job.unchanged) == ("done", 3, 1, 1, 1)
    assert Customer.objects.get(external_id="K1").name == "Kim Park"
    page = client.get(response["Location"]).content.decode()
    assert "data-added>1<" in page and "data-updated>1<" in page and "data-unchanged>1<" in page
    assert "hx-trigger" not in page  # a finished job is not polled
    assert not job.file and not default_storage.exists(ImportJob.objects.get().file_name)


def test_an_events_file_uploaded_in_the_browser_adds_its_events(
    client_for, importer, known_customers, django_capture_on_commit_callbacks
):
    text = "customer_external_id,event_type,occurred_at,amount,channel\n"
    text += "K1,order,2026-01-05T10:00:00+08:00,99.50,web\nK1,page_view,2026-01-05,,web\nK2,order,2026-01-06,10,app\n"
    response = _upload(
        client_for(importer), "events", _csv(text, "events.csv"), django_capture_on_commit_callbacks
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert (job.kind, job.status, job.added, job.customers) == ("events", "done", 3, 2)
    assert Event.objects.count() == 3


def test_the_stored_upload_is_removed_when_the_job_ends(
    client_for, importer, django_capture_on_commit_callbacks, monkeypatch
):
    saved: list[str] = []
    save = default_storage.save
    monkeypatch.setattr(
        default_storage, "save", lambda name, content: saved.append(save(name, content)) or saved[-1]
    )
    _upload(
        client_for(importer),
        "customers",
        _csv(HEADER + "N1,Ned,,,,,,,\n"),
        django_capture_on_commit_callbacks,
    )
    assert saved and saved[0].startswith("imports/")
    assert not default_storage.exists(saved[0])


def test_an_upload_larger_than_the_memory_limit_reaches_the_job_as_a_temporary_file(
    client_for, importer, settings, monkeypatch
):
    # given a file bigger than FILE_UPLOAD_MAX_MEMORY_SIZE
    rows = "".join(f"N{i},Name {i},,,,,,,\n" for i in range(20000))
    assert len(rows) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    seen = []
    monkeypatch.setattr(
        import_jobs, "import_job_create", lambda **kw: seen.append(kw["upload"]) or ImportJob(pk=1)
    )
    client_for(importer).post(reverse("crm_tags:imports"), {"kind": "customers", "file": _csv(HEADER + rows)})
    # then it was streamed to disk, not held in memory
    assert hasattr(seen[0], "temporary_file_path")


# --- bad rows, the error file and personal values -----------------------------------------------------


def test_a_bad_file_is_rejected_with_every_bad_row_and_nothing_changes(
    client_for, importer, known_customers, django_capture_on_commit_callbacks
):
    text = HEADER + "K1,Changed,,,,,,,\n" + "".join(f"B{i},x,not-an-email,,,,,,\n" for i in range(60))
    client = client_for(importer)
    _upload(client, "customers", _csv(text), django_capture_on_commit_callbacks)
    job = ImportJob.objects.get()
    assert (job.status, job.error_total, len(job.errors)) == ("rejected", 60, 60)
    assert Customer.objects.count() == 2 and Customer.objects.get(external_id="K1").name == "Kim"
    first = client.get(reverse("crm_tags:import_job", args=[job.pk])).content.decode()
    assert "60 bad rows; nothing was imported." in first and "Page 1 of 2" in first
    second = client.get(reverse("crm_tags:import_job", args=[job.pk]) + "?page=2").content.decode()
    assert "<td>62</td>" in second and "<td>3</td>" not in second  # rows 53..62 on page 2


def test_the_error_file_lists_row_column_and_message(
    client_for, importer, django_capture_on_commit_callbacks
):
    client = client_for(importer)
    _upload(
        client, "customers", _csv(HEADER + ",x,,,,,,,\nA1,y,bad,,,,,,\n"), django_capture_on_commit_callbacks
    )
    job = ImportJob.objects.get()
    response = client.get(reverse("crm_tags:import_job_errors_csv", args=[job.pk]))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert response["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(body))) == [
        ["row", "column", "message"],
        ["2", "external_id", "Required."],
        ["3", "email", "Not an e-mail address."],
    ]


def _planted_rejection(client, capture) -> ImportJob:
    text = "customer_external_id,event_type,occurred_at,amount,channel\n"
    text += f"{PLANTED_EMAIL},order,2026-01-05,1,web\n{PLANTED_PHONE},order,2026-01-05,1,web\n"
    _upload(client, "events", _csv(text, "events.csv"), capture)
    return ImportJob.objects.get()


def test_errors_never_show_planted_personal_values_to_a_viewer_without_view_pii(
    client_for, importer, django_capture_on_commit_callbacks
):
    client = client_for(importer)
    job = _planted_rejection(client, django_capture_on_commit_callbacks)
    assert job.status == "rejected"
    page = client.get(reverse("crm_tags:import_job", args=[job.pk])).content.decode()
    partial = client.get(reverse("crm_tags:import_job_progress", args=[job.pk])).content.decode()
    file = b"".join(client.get(reverse("crm_tags:import_job_errors_csv", args=[job.pk])).streaming_content)
    for body in (page, partial, file.decode("utf-8-sig")):
        assert "Unknown customer" in body
        assert PLANTED_EMAIL not in body and PLANTED_PHONE not in body


def test_errors_show_personal_values_to_a_viewer_with_view_pii(
    client_for, make_user, support_team, django_capture_on_commit_callbacks
):
    data_ops = in_english(make_user("dora", role="agent", team=support_team.name, pii=True))
    client = client_for(data_ops)
    job = _planted_rejection(client, django_capture_on_commit_callbacks)
    file = b"".join(client.get(reverse("crm_tags:import_job_errors_csv", args=[job.pk])).streaming_content)
    assert PLANTED_EMAIL in file.decode("utf-8-sig") and PLANTED_PHONE in file.decode("utf-8-sig")


# --- progress -----------------------------------------------------------------------------------------


def _running_job(owner, **fields) -> ImportJob:
    now = timezone.now()
    values = {"started_at": now - timedelta(seconds=10), "heartbeat_at": now, "total_rows": 3000}
    return ImportJob.objects.create(
        owner=owner, kind="customers", status="running", file_name="big.csv", **(values | fields)
    )


def test_the_progress_partial_shows_rows_rate_and_time_left_and_keeps_polling(client_for, importer):
    job = _running_job(importer, rows_read=1000)
    body = client_for(importer).get(reverse("crm_tags:import_job_progress", args=[job.pk])).content.decode()
    assert "1000 of about 3000 rows read" in body
    assert "100 rows/s" in body and "about 20 s left" in body
    assert 'hx-trigger="every 1s"' in body and 'aria-valuenow="33"' in body


def test_the_importers_report_progress_every_n_rows_and_at_the_end(monkeypatch):
    monkeypatch.setattr(importers.validation, "PROGRESS_EVERY", 2)
    calls: list[int] = []
    importers.import_customers(
        io.StringIO(HEADER + "".join(f"P{i},p,,,,,,,\n" for i in range(5))), progress=calls.append
    )
    assert calls == [2, 4, 5]


@pytest.mark.parametrize("fast", [True, False])
def test_the_events_import_reports_the_rows_read_on_both_paths(fast, known_customers, monkeypatch):
    monkeypatch.setattr(importers, "FAST_EVENTS", fast)
    calls: list[int] = []
    text = "customer_external_id,event_type,occurred_at,amount,channel\n" + "K1,order,2026-01-05,1,web\n" * 3
    importers.import_events(io.StringIO(text), progress=calls.append)
    assert calls and calls[-1] == 3


@pytest.mark.django_db(transaction=True)
def test_progress_is_written_on_its_own_connection_while_the_import_transaction_is_open(make_user):
    # given a running job, and an import whose transaction is still open
    job = _running_job(make_user("pat", role="agent"))
    with ThreadPoolExecutor(max_workers=1) as other_session, transaction.atomic():
        with import_jobs.ImportProgress(job.pk, interval=0.05) as progress:
            # when the importer reports rows
            progress(1234)
            # then another session sees them before the import commits
            deadline = time.monotonic() + 10
            seen = 0
            while seen != 1234 and time.monotonic() < deadline:
                seen = other_session.submit(_committed_rows_read, job.pk).result()
        other_session.submit(connections.close_all).result()
    assert seen == 1234


def _committed_rows_read(job_id: int) -> int:
    return ImportJob.objects.values_list("rows_read", flat=True).get(pk=job_id)


def test_a_job_whose_worker_died_ends_as_failed(importer):
    stale = _running_job(importer, heartbeat_at=timezone.now() - timedelta(minutes=5))
    alive = _running_job(importer)
    assert import_jobs.import_jobs_fail_stale() == 1
    stale.refresh_from_db()
    alive.refresh_from_db()
    assert (stale.status, alive.status) == ("failed", "running")
    assert "nothing was written" in stale.failure


# --- permissions, scoping and bad input ----------------------------------------------------------------


def test_an_importer_sees_the_upload_page_with_their_jobs(
    client_for, importer, django_assert_max_num_queries
):
    for _ in range(3):
        _running_job(importer)
    client = client_for(importer)
    # session, user, group and user permissions (the role), the jobs, unread notifications, the team
    # (navigation): seven, whatever the number of jobs
    with django_assert_max_num_queries(7):
        response = client.get(reverse("crm_tags:imports"))
    assert response.status_code == 200 and response.content.decode().count("big.csv") == 3


def test_a_requester_may_not_open_the_import_page_or_upload(client_for, requester):
    client = client_for(requester)
    assert client.get(reverse("crm_tags:imports")).status_code == 403
    response = client.post(
        reverse("crm_tags:imports"), {"kind": "customers", "file": _csv(HEADER + "N1,n,,,,,,,\n")}
    )
    assert response.status_code == 403 and not ImportJob.objects.exists()


def test_a_requester_may_not_read_an_import_job(client_for, importer, requester):
    job = _running_job(importer)
    client = client_for(requester)
    for name in ("import_job", "import_job_progress", "import_job_errors_csv"):
        assert client.get(reverse(f"crm_tags:{name}", args=[job.pk])).status_code == 403


def test_an_agent_may_not_read_another_agents_import_job(client_for, importer, agent):
    job = _running_job(importer)
    client = client_for(agent)
    for name in ("import_job", "import_job_progress", "import_job_errors_csv"):
        assert client.get(reverse(f"crm_tags:{name}", args=[job.pk])).status_code == 404


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "customers"}, "This field is required."),
        ({"kind": "customers", "file": _csv(HEADER, "people.xlsx")}, "Upload a .csv file."),
        ({"kind": "orders", "file": _csv(HEADER)}, "Select a valid choice."),
    ],
)
def test_bad_upload_input_is_refused_with_a_message(client_for, importer, data, message):
    response = client_for(importer).post(reverse("crm_tags:imports"), data)
    assert response.status_code == 422 and message in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_file_over_the_import_limit_is_refused_naming_the_limit(client_for, importer, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = client_for(importer).post(
        reverse("crm_tags:imports"), {"kind": "customers", "file": _csv(HEADER + "N1,n,,,,,,,\n" * 10)}
    )
    assert response.status_code == 422 and "the limit is" in response.content.decode()
