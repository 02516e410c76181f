"""Every value a person reads has a label in their language (issue 18, items 9 and 10): a manager walks
the main pages in Chinese, with data like the demo's, and no code or English word from a fixed list shows.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from crm_tags.models import Customer
from knowledge_base.services import article_update
from tests.campaigns.factories import campaign_make, metric_make
from tests.conftest import in_english
from tests.knowledge_base.factories import make_article
from tests.tickets.factories import make_ticket
from tickets import services
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

# Codes and English words that must never reach a Chinese page.
LEAKS = (
    "new →",
    "→ triaged",
    "needs_external",
    "not_feasible",
    "mini_program",
    "go_live",
    "build:",
    "confirm:",
    "days_since_last",
    "10800 min",
    " min ·",
    "+00:00",
    ">f<",
    "roi:",
    "conversions:",
    ">body<",
    ">title<",
    ">summary<",
    "Monday",
    "Sunday",
    "January",
    "December",
    "first_response_at",
    "feasibility",
)


def _text(html: str) -> str:
    """What a person reads: the page without attribute values, scripts and styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<([a-zA-Z][\w-]*)[^>]*>", r"<\1>", html)


@pytest.fixture
def demo(manager, agent, requester):
    """A ticket triaged, answered and planned; a customer; a campaign with KPI targets and figures; an
    article with a revision."""
    services.sla_defaults_ensure()
    ticket = make_ticket(requester, title="Fix the coupon banner")
    services.ticket_transition(
        ticket=ticket,
        to=Ticket.Status.TRIAGED,
        by=agent,
        feasibility=Ticket.Feasibility.NEEDS_EXTERNAL,
        assignee=agent,
    )
    services.comment_add(ticket=ticket, by=agent, body="Looking at it")
    services.plan_save(
        ticket=ticket,
        by=agent,
        implementation_path="Change the banner",
        milestones=[
            {"name": "confirm", "due": "2026-12-01"},
            {"name": "build", "due": "2026-12-05"},
            {"name": "go_live", "due": "2026-12-10"},
        ],
        submit=True,
    )
    Customer.objects.create(
        external_id="C-LBL", name="Wang Fang", gender="f", source_channel="mini_program", city="Shanghai"
    )
    campaign = campaign_make(
        owner=manager,
        code="labels-camp",
        kpi_targets={"conversions": 8000, "roi": 1.5, "revenue": 3000000},
        channels=["wechat", "mini_program"],
        start_date=timezone.localdate() - dt.timedelta(days=5),
        end_date=timezone.localdate() + dt.timedelta(days=5),
    )
    metric_make(
        campaign=campaign,
        date=timezone.localdate() - dt.timedelta(days=1),
        channel="mini_program",
        spend=Decimal("100"),
        revenue=Decimal("300"),
        impressions=1000,
        clicks=50,
        conversions=5,
    )
    article = make_article(agent, title="Coupon setup", body="Step one")
    article_update(article=article, by=agent, body="Step one\nStep two")
    return {"ticket": ticket, "campaign": campaign, "article": article}


def _pages(demo: dict) -> list[str]:
    ticket, campaign, article = demo["ticket"], demo["campaign"], demo["article"]
    detail = reverse("campaigns:detail", args=[campaign.code])
    return [
        reverse("tickets:queue"),
        reverse("tickets:detail", args=[ticket.key]),
        reverse("tickets:sla"),
        reverse("crm_tags:index"),
        reverse("crm_tags:customer_detail", args=["C-LBL"]),
        detail,
        f"{detail}?tab=plan",
        f"{detail}?tab=figures",
        reverse("knowledge_base:article", args=[article.pk]),
        reverse("knowledge_base:article_history", args=[article.pk]),
        reverse("analytics:index"),
        reverse("analytics:support"),
        reverse("analytics:marketing"),
        reverse("analytics:customers"),
    ]


def test_no_code_or_english_word_on_the_main_pages_in_chinese(client_for, manager, demo):
    # given a manager who reads Chinese (the default) and pages full of stored codes
    client = client_for(manager)
    found = {}
    for url in _pages(demo):
        # when they open each main page
        response = client.get(url)
        assert response.status_code == 200, url
        text = _text(response.content.decode())
        # then none of the known codes or English words is on it
        leaks = [leak for leak in LEAKS if leak in text]
        if leaks:
            found[url] = leaks
    assert found == {}


def test_the_sla_page_an_agent_reads_has_no_codes_in_chinese(client_for, agent, demo):
    # given an agent, who reads the SLA policies and the calendar without editing them
    # when they open the SLA page in Chinese
    text = _text(client_for(agent).get(reverse("tickets:sla")).content.decode())
    # then weekdays have their names, and no target reads as a count of minutes
    assert "星期一" in text
    assert [leak for leak in LEAKS if leak in text] == []


def test_sla_targets_read_as_durations(client_for, agent, demo):
    # given an agent reading English
    in_english(agent)
    # when they open the SLA page
    text = _text(client_for(agent).get(reverse("tickets:sla")).content.decode())
    # then each target is a duration in words (routine: 4 hours / 3 days of 9 hours; planned: 180 hours)
    assert "First response: 4 hours · Resolution: 27 hours" in text
    assert "Resolution: 180 hours" in text
    assert " min" not in text.replace(" minutes", "")


def test_the_triage_error_names_the_feasibility_choices_by_their_labels(agent, requester):
    # given a new request triaged without a feasibility
    ticket = make_ticket(requester)
    # when the agent (reading English) moves it on
    with translation.override("en"), pytest.raises(services.TransitionDataMissing) as exc:
        services.ticket_transition(ticket=ticket, to=Ticket.Status.TRIAGED, by=agent, assignee=agent)
    # then the message names the choices as the form shows them, not their codes
    assert exc.value.errors["feasibility"] == (
        "Choose the feasibility: Feasible / Needs external help / Not feasible."
    )


@pytest.mark.parametrize(
    ("page", "shown"),
    [
        (
            "ticket",
            ["Go live: Dec. 10, 2026", "Build: Dec. 5, 2026", "Feasibility</span>: — → Needs external help"],
        ),
        ("customer", ["Female", "Mini program"]),
        ("campaign", ["ROI: 150.0%", "Conversions: 8,000", "Revenue: 3,000,000.00", "Mini program"]),
        ("article", ['data-field="body"><div class="card-header small">Body']),
    ],
)
def test_stored_codes_read_as_labels_in_english(client_for, manager, demo, page, shown):
    # given a manager reading English
    in_english(manager)
    url = {
        "ticket": reverse("tickets:detail", args=[demo["ticket"].key]),
        "customer": reverse("crm_tags:customer_detail", args=["C-LBL"]),
        "campaign": reverse("campaigns:detail", args=[demo["campaign"].code]) + "?tab=plan",
        "article": reverse("knowledge_base:article_history", args=[demo["article"].pk]),
    }[page]
    # when they open the page
    html = client_for(manager).get(url).content.decode()
    # then each stored code reads as its label, and values as they are formatted
    assert [text for text in shown if text not in html] == []
