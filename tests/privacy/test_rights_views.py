"""The pages of the person's requests: the list (badges, overdue flag, empty state), one request (trail,
approve button, completion report, download), and the buttons on a customer page."""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from privacy.models import PrivacyRequest, UnmaskedAccess
from tests.crm_tags import factories
from tests.privacy import rights_factories as rf

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_without_pii(make_user, support_team):
    user = make_user("boss-nopii", role="manager", team=support_team.name, pii=False)
    user.language = "en"
    user.save(update_fields=["language"])
    return user


@pytest.fixture
def customer(db):
    person = factories.customer(external_id="PAGE1")
    rf.history_for(person)
    return person


def _csrf_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _post_with_csrf(client: Client, page: str, url: str):
    """POST the way a browser does: the token from the page's form."""
    html = client.get(page).content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return client, token, url


# --- the list --------------------------------------------------------------------------------------


def test_the_list_shows_kind_status_due_and_filer(
    client_for, manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    PrivacyRequest.objects.filter(pk=req.pk).update(due_at=timezone.now() - dt.timedelta(days=1))
    html = client_for(manager).get(reverse("privacy:requests")).content.decode()
    assert 'id="privacy-requests"' in html
    assert "Erase" in html and "Pending approval" in html and "boss" in html
    assert "data-overdue" in html
    assert reverse("privacy:request_detail", args=[req.pk]) in html


def test_the_list_has_an_empty_state(client_for, manager):
    html = client_for(manager).get(reverse("privacy:requests")).content.decode()
    assert "No requests yet." in html and 'id="privacy-requests"' not in html


@pytest.mark.parametrize("who", ["requester", "agent"])
def test_non_managers_get_403_on_the_pages(
    request, client_for, manager, customer, who, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("privacy:requests")).status_code == 403
    assert client.get(reverse("privacy:request_detail", args=[req.pk])).status_code == 403
    assert client.post(reverse("privacy:request_approve", args=[req.pk])).status_code == 403
    assert (
        client.post(
            reverse("privacy:request_file"), {"kind": "export", "customer_external_id": "PAGE1"}
        ).status_code
        == 403
    )


def test_the_list_page_runs_a_fixed_number_of_queries(
    client_for, manager, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    for _ in range(5):
        rf.filed("erase", factories.customer(), manager, django_capture_on_commit_callbacks)
    client = client_for(manager)
    client.get(reverse("privacy:requests"))  # warm the session and the navigation's caches
    # session, user, permissions (2), navigation (unread notifications), count, page: never one per row
    with django_assert_max_num_queries(9) as captured:
        response = client.get(reverse("privacy:requests"))
    assert response.content.decode().count("data-request=") == 5
    assert sum("privacy_privacyrequest" in q["sql"] for q in captured.captured_queries) == 2


# --- one request ---------------------------------------------------------------------------------------


def test_a_pending_erasure_shows_its_status_and_the_approve_button(
    client_for, manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    html = client_for(manager).get(reverse("privacy:request_detail", args=[req.pk])).content.decode()
    assert 'id="request-status"' in html and "Pending approval" in html
    assert 'id="approve-request"' in html
    assert "Filed" in html  # the trail
    assert 'id="completion-report"' not in html


def test_approving_with_the_form_runs_the_erasure_and_shows_the_report(
    manager, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("erase", customer, manager, django_capture_on_commit_callbacks)
    page = reverse("privacy:request_detail", args=[req.pk])
    client, token, url = _post_with_csrf(
        _csrf_client(manager), page, reverse("privacy:request_approve", args=[req.pk])
    )
    assert client.post(url).status_code == 403  # without the token
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == page
    html = client.get(page).content.decode()
    assert 'data-status="done"' in html
    assert 'id="completion-report"' in html and "Events" in html
    assert 'id="approve-request"' not in html
    assert "Approved" in html and "PAGE1" not in html


def test_an_export_offers_its_download_only_to_who_may_download(
    client_for, manager, manager_without_pii, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    page = reverse("privacy:request_detail", args=[req.pk])
    assert 'id="download-export"' in client_for(manager).get(page).content.decode()
    assert 'id="download-export"' not in client_for(manager_without_pii).get(page).content.decode()
    assert 'id="approve-request"' not in client_for(manager).get(page).content.decode()


def test_the_download_page_streams_uncached_and_logs(
    client_for, manager, manager_without_pii, agent, customer, django_capture_on_commit_callbacks
):
    req = rf.filed("export", customer, manager, django_capture_on_commit_callbacks)
    url = reverse("privacy:request_download", args=[req.pk])
    assert client_for(manager_without_pii).get(url).status_code == 403
    refused = client_for(agent).get(url)
    assert refused.status_code == 403 and b"PAGE1" not in refused.content
    response = client_for(manager).get(url)
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    assert b"PAGE1" in b"".join(response.streaming_content)
    assert UnmaskedAccess.objects.filter(kind="privacy_export", user=manager).count() == 1


# --- the customer page ---------------------------------------------------------------------------------


def test_managers_see_the_request_buttons_on_a_customer_page(client_for, manager, agent, customer):
    page = reverse("crm_tags:customer_detail", args=["PAGE1"])
    html = client_for(manager).get(page).content.decode()
    assert 'id="request-export"' in html and 'id="request-erase"' in html
    other = client_for(agent).get(page).content.decode()
    assert 'id="request-export"' not in other and 'id="request-erase"' not in other


def test_the_erase_button_files_a_request_and_opens_it(manager, customer, django_capture_on_commit_callbacks):
    client, token, url = _post_with_csrf(
        _csrf_client(manager),
        reverse("crm_tags:customer_detail", args=["PAGE1"]),
        reverse("privacy:request_file"),
    )
    response = client.post(
        url, {"csrfmiddlewaretoken": token, "kind": "erase", "customer_external_id": "PAGE1"}
    )
    req = PrivacyRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("privacy:request_detail", args=[req.pk])
    assert (req.kind, req.status, req.customer_id) == ("erase", "pending_approval", customer.pk)


def test_filing_for_an_unknown_customer_is_a_404(client_for, manager):
    response = client_for(manager).post(
        reverse("privacy:request_file"), {"kind": "export", "customer_external_id": "NOPE"}
    )
    assert response.status_code == 404
    assert not PrivacyRequest.objects.exists()
