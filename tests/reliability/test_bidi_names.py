"""Bidirectional controls (U+202E and kin) never reach a saved name: ticket and article titles, campaign
and tag names, attachment file names (one shared function, config.text.name_text)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns.models import Campaign
from config.text import name_text
from crm_tags.models import Tag
from knowledge_base.models import Article
from tests.knowledge_base.factories import make_article
from tests.tickets.factories import make_ticket
from tickets.models import Attachment, Ticket

BIDI = [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
]
SPOOFED = "invoice\u202egnp.exe"  # shows as "invoiceexe.png"


@pytest.mark.parametrize("control", BIDI)
def test_name_text_strips_every_bidi_control(control):
    assert name_text(f" a{control}b ") == "ab"


def test_name_text_keeps_other_scripts():
    assert name_text("双11 预热 – عرض") == "双11 预热 – عرض"


@pytest.mark.django_db
def test_a_ticket_title_from_the_api_has_no_bidi_controls(api_for, requester, agent):
    response = api_for(requester).post(
        "/api/v1/tickets/", {"title": SPOOFED, "type": "incident", "urgency": "routine"}, format="json"
    )
    assert response.status_code == 201
    assert Ticket.objects.get(pk=response.json()["id"]).title == "invoicegnp.exe"


@pytest.mark.django_db
def test_a_title_of_bidi_controls_only_is_refused(api_for, requester, agent):
    response = api_for(requester).post(
        "/api/v1/tickets/", {"title": "\u202e\u2066", "type": "incident", "urgency": "routine"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "title"
    assert not Ticket.objects.exists()


@pytest.mark.django_db
def test_an_attachment_name_has_no_bidi_controls(requester, agent):
    upload = SimpleUploadedFile("report\u202efdp.txt", b"hello", content_type="text/plain")
    ticket = make_ticket(requester, files=[upload])
    assert Attachment.objects.get(ticket=ticket).original_name == "reportfdp.txt"


@pytest.mark.django_db
def test_an_article_title_and_tags_have_no_bidi_controls(agent):
    article = make_article(agent, title=SPOOFED)
    assert Article.objects.get(pk=article.pk).title == "invoicegnp.exe"


@pytest.mark.django_db
def test_an_edited_article_title_has_no_bidi_controls(api_for, agent):
    article = make_article(agent)
    response = api_for(agent).patch(
        f"/api/v1/kb/articles/{article.pk}/",
        {"title": "New\u2067 title", "tags": ["vip\u202e"]},
        format="json",
        HTTP_IF_MATCH=f'"{article.lock_version}"',
    )
    assert response.status_code == 200, response.content
    article.refresh_from_db()
    assert (article.title, article.tags) == ("New title", ["vip"])


@pytest.mark.django_db
def test_a_campaign_name_has_no_bidi_controls(api_for, requester, monkeypatch):
    monkeypatch.setattr("campaigns.selectors.known_tag_slugs", lambda slugs: set(slugs))
    response = api_for(requester).post(
        "/api/v1/campaigns/",
        {
            "name": "Double\u202e11",
            "code": "d11-bidi",
            "objective": "x",
            "budget": "100.00",
            "start_date": "2026-10-20",
            "end_date": "2026-11-10",
            "channels": ["wechat"],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(code="d11-bidi")
    assert campaign.name == "Double11"
    response = api_for(requester).patch(
        "/api/v1/campaigns/d11-bidi/",
        {"name": "\u2066Renamed\u2069"},
        format="json",
        HTTP_IF_MATCH=response["ETag"],
    )
    assert response.status_code == 200, response.content
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"


@pytest.mark.django_db
def test_a_tag_and_its_category_have_no_bidi_controls(api_for, agent):
    response = api_for(agent).post(
        "/api/v1/tags/",
        {"slug": "vip", "name": "V\u202eIP", "kind": "rule", "category": "Val\u200fue"},
        format="json",
    )
    assert response.status_code == 201, response.content
    tag = Tag.objects.select_related("category").get(slug="vip")
    assert (tag.name, tag.category.name) == ("VIP", "Value")
