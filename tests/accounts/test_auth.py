import pytest
from django.urls import reverse

from accounts.models import User


@pytest.mark.django_db
def test_login_with_good_password_lands_home(client, requester):
    response = client.post(reverse("accounts:login"), {"username": "req", "password": "pw-req-123"})
    assert response.status_code == 302
    assert client.get(reverse("tickets:my_requests")).status_code == 200


@pytest.mark.django_db
def test_login_with_bad_password_shows_error(client, requester):
    response = client.post(reverse("accounts:login"), {"username": "req", "password": "nope"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_repeated_failed_logins_lock_the_account(client, requester, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("accounts:login"), {"username": "req", "password": "wrong"})
    response = client.post(reverse("accounts:login"), {"username": "req", "password": "pw-req-123"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_logout_requires_post_and_ends_session(client_for, requester):
    c = client_for(requester)
    assert c.post(reverse("accounts:logout")).status_code == 302
    assert c.get(reverse("tickets:my_requests")).status_code == 302


@pytest.mark.django_db
def test_password_change(client_for, requester):
    c = client_for(requester)
    response = c.post(
        reverse("accounts:password_change"),
        {
            "old_password": "pw-req-123",
            "new_password1": "Fresh-Passw0rd-9",
            "new_password2": "Fresh-Passw0rd-9",
        },
    )
    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.check_password("Fresh-Passw0rd-9")


@pytest.mark.django_db
def test_language_switch_is_saved_on_the_profile(client_for, requester):
    c = client_for(requester)
    response = c.post(reverse("accounts:set_language"), {"language": "en", "next": "/accounts/preferences/"})
    assert response.status_code == 302 and response.url == "/accounts/preferences/"
    requester.refresh_from_db()
    assert requester.language == "en"
    assert "Knowledge base" in c.get("/accounts/preferences/").content.decode()


@pytest.mark.django_db
def test_language_switch_refuses_offsite_next(client_for, requester):
    response = client_for(requester).post(
        reverse("accounts:set_language"), {"language": "en", "next": "https://evil.example/"}
    )
    assert response.url == reverse("home")


@pytest.mark.django_db
def test_chinese_profile_gets_chinese_pages(client_for, requester):
    requester.language = "zh-hans"
    requester.save()
    html = client_for(requester).get("/accounts/preferences/").content.decode()
    assert "知识库" in html
    assert 'lang="zh-hans"' in html


@pytest.mark.django_db
def test_preferences_change_time_zone(client_for, requester):
    c = client_for(requester)
    response = c.post(
        reverse("accounts:preferences"),
        {
            "display_name": "R",
            "email": "r@example.com",
            "language": "en",
            "timezone": "Europe/Berlin",
            "is_available": "on",
        },
    )
    assert response.status_code == 302
    assert User.objects.get(pk=requester.pk).timezone == "Europe/Berlin"


@pytest.mark.django_db
def test_preferences_reject_unknown_time_zone(client_for, requester):
    response = client_for(requester).post(
        reverse("accounts:preferences"),
        {"display_name": "R", "email": "r@example.com", "language": "en", "timezone": "Mars/Olympus"},
    )
    assert response.status_code == 422
    assert User.objects.get(pk=requester.pk).timezone == "Asia/Shanghai"
