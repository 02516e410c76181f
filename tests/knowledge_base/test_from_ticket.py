"""A resolved ticket's retrospective becomes a draft retrospective article in one click."""

import pytest
from django.urls import reverse

from knowledge_base import services
from knowledge_base.models import Article
from tests.tickets.factories import force_status, make_ticket
from tickets.services import retrospective_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolved_ticket(requester, agent):
    ticket = force_status(make_ticket(requester, title="优惠券页面价格显示错误"), "resolved")
    retrospective_save(
        ticket=ticket,
        by=agent,
        background="双十一优惠券显示 20 元而不是 30 元。",
        solution="1. 修正价格规则\n2. 清理 CDN 缓存",
        configuration="coupon.price = 30",
        lessons="上线前核对价格。",
    )
    ticket.refresh_from_db()
    return ticket


def test_service_builds_a_linked_retrospective_draft(resolved_ticket, agent):
    article = services.article_from_ticket(ticket=resolved_ticket, by=agent)
    assert article.kind == Article.Kind.RETROSPECTIVE and article.status == Article.Status.DRAFT
    assert list(article.related_tickets.all()) == [resolved_ticket]
    for part in ("## 背景", "## 解决方案与步骤", "coupon.price = 30", "## 经验教训", resolved_ticket.key):
        assert part in article.body


def test_second_click_returns_the_same_article(resolved_ticket, agent):
    first = services.article_from_ticket(ticket=resolved_ticket, by=agent)
    assert services.article_from_ticket(ticket=resolved_ticket, by=agent) == first


def test_open_ticket_is_refused(requester, agent):
    ticket = make_ticket(requester)
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_from_ticket(ticket=ticket, by=agent)


def test_resolved_ticket_without_retrospective_is_refused(requester, agent):
    ticket = force_status(make_ticket(requester), "resolved")
    with pytest.raises(services.ArticleActionNotAllowed):
        services.article_from_ticket(ticket=ticket, by=agent)


def test_agent_post_redirects_to_the_editor(resolved_ticket, agent, client_for):
    response = client_for(agent).post(reverse("knowledge_base:from_ticket", args=[resolved_ticket.key]))
    article = Article.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "knowledge_base:article_edit", args=[article.pk]
    )


def test_requester_may_not_turn_a_ticket_into_an_article(resolved_ticket, requester, client_for):
    response = client_for(requester).post(reverse("knowledge_base:from_ticket", args=[resolved_ticket.key]))
    assert response.status_code == 403 and not Article.objects.exists()


def test_unknown_ticket_is_404(agent, client_for):
    response = client_for(agent).post(reverse("knowledge_base:from_ticket", args=["MT-99999"]))
    assert response.status_code == 404
