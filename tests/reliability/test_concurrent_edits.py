"""Two people editing the same object: the second save with a stale version gets a clear conflict,
and the first one's change is kept (no lost update)."""

import pytest

from knowledge_base.models import Article


@pytest.fixture
def draft(api_for, agent) -> dict:
    created = api_for(agent).post(
        "/api/v1/kb/articles/",
        {"title": "私域运营手册", "summary": "s", "body": "v1", "kind": "manual", "language": "zh-hans"},
        format="json",
    )
    assert created.status_code == 201
    return created.json()


@pytest.mark.django_db
def test_article_second_stale_api_edit_is_409(api_for, agent, manager, draft):
    first, second = api_for(agent), api_for(manager)
    token = first.get(f"/api/v1/kb/articles/{draft['id']}/").json()["version_token"]
    ok = first.patch(
        f"/api/v1/kb/articles/{draft['id']}/", {"body": "agent's edit"}, format="json", HTTP_IF_MATCH=token
    )
    assert ok.status_code == 200
    stale = second.patch(
        f"/api/v1/kb/articles/{draft['id']}/", {"body": "manager's edit"}, format="json", HTTP_IF_MATCH=token
    )
    assert stale.status_code == 409
    assert "Someone else changed this" in stale.json()["detail"]
    assert Article.objects.get(pk=draft["id"]).body == "agent's edit"


@pytest.mark.django_db
def test_article_second_stale_page_edit_shows_the_conflict(client_for, api_for, agent, manager, draft):
    token = api_for(agent).get(f"/api/v1/kb/articles/{draft['id']}/").json()["version_token"]
    api_for(agent).patch(
        f"/api/v1/kb/articles/{draft['id']}/", {"body": "agent's edit"}, format="json", HTTP_IF_MATCH=token
    )
    form = client_for(manager).get(f"/kb/articles/{draft['id']}/edit/")
    assert form.status_code == 200
    response = client_for(manager).post(
        f"/kb/articles/{draft['id']}/edit/",
        {
            "title": "私域运营手册",
            "summary": "s",
            "body": "manager's edit",
            "kind": "manual",
            "language": "zh-hans",
            "version": token,
        },
    )
    assert response.status_code == 409
    assert 'id="edit-conflict"' in response.content.decode()
    assert Article.objects.get(pk=draft["id"]).body == "agent's edit"


@pytest.mark.django_db
def test_ticket_triage_second_stale_edit_shows_the_conflict(client_for, agent, manager, requester):
    from config.concurrency import version_token
    from tests.tickets.factories import make_ticket
    from tickets.models import Ticket

    ticket = make_ticket(requester)
    token = version_token(ticket)
    base = {"type": "incident", "feasibility": "feasible", "feasibility_note": "", "is_complex": ""}
    first = client_for(agent).post(
        f"/requests/{ticket.key}/triage/", {**base, "urgency": "urgent", "version": token}
    )
    assert first.status_code == 302
    second = client_for(manager).post(
        f"/requests/{ticket.key}/triage/", {**base, "urgency": "planned", "version": token}
    )
    assert second.status_code == 409
    assert 'id="triage-conflict"' in second.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).urgency == "urgent"


@pytest.mark.django_db
def test_rule_saved_from_a_stale_version_is_409_and_keeps_the_newer_rule(api_for, agent, manager):
    from crm_tags.models import TagVersion

    api_for(agent).post("/api/v1/tags/", {"slug": "vip2", "name": "VIP", "kind": "rule"}, format="json")
    rule_a = {"attr": "city", "op": "=", "value": "Shanghai"}
    rule_b = {"attr": "city", "op": "=", "value": "Beijing"}
    first = api_for(agent).post(
        "/api/v1/tags/vip2/versions/", {"definition": rule_a, "base_version": 0}, format="json"
    )
    assert first.status_code == 201 and first.json() == {"version": 1}
    stale = api_for(manager).post(
        "/api/v1/tags/vip2/versions/", {"definition": rule_b, "base_version": 0}, format="json"
    )
    assert stale.status_code == 409
    assert "Version 1 was saved after you opened this rule" in stale.json()["detail"]
    assert list(TagVersion.objects.filter(tag__slug="vip2").values_list("definition", flat=True)) == [rule_a]


@pytest.mark.django_db
def test_rule_page_save_from_a_stale_version_shows_the_conflict(api_for, client_for, agent, manager):
    import json

    manager.language = "en"
    manager.save(update_fields=["language"])
    api_for(agent).post("/api/v1/tags/", {"slug": "vip3", "name": "VIP", "kind": "rule"}, format="json")
    api_for(agent).post(
        "/api/v1/tags/vip3/versions/",
        {"definition": {"attr": "city", "op": "=", "value": "X"}},
        format="json",
        HTTP_IF_MATCH='"0"',
    )
    response = client_for(manager).post(
        "/customers/tags/vip3/versions/",
        {"definition": json.dumps({"attr": "city", "op": "=", "value": "Y"}), "base_version": "0"},
    )
    assert response.status_code == 409
    assert "was saved after you opened this rule" in response.content.decode()
