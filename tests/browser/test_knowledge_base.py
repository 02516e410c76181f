"""Knowledge base in a real browser: deflection on the request form; write → submit → publish → search."""

import pytest
from playwright.sync_api import expect

from knowledge_base.models import Article, Deflection
from tests.conftest import browser_login
from tests.knowledge_base.factories import make_published

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_requester_is_helped_by_a_suggested_article_and_files_nothing(page, make_user, support_team):
    # Given a published FAQ about failing e-mails
    agent = make_user("kbagent", role="agent", team=support_team.name)
    manager = make_user("kbboss", role="manager", team=support_team.name)
    article = make_published(
        agent,
        manager,
        title="邮件发送失败的常见原因",
        summary="退信、域名未认证",
        body="检查 SPF 和 DKIM。",
        language="zh-hans",
    )
    make_user("rita", role="requester")
    browser_login(page, "rita", "pw-rita-123")
    # When the requester types a title on the new-request form
    page.goto("/requests/new/")
    page.locator("input[name=title]").press_sequentially("邮件发送失败", delay=20)
    # Then the article is suggested beside it
    suggestion = page.locator("#kb-suggestions .kb-suggestion a", has_text="邮件发送失败的常见原因")
    expect(suggestion).to_be_visible()
    # When they open it and say it solved the problem
    suggestion.click()
    expect(page.locator("#article-title")).to_have_text("邮件发送失败的常见原因")
    page.click("#kb-solved")
    # Then they see a thank-you, a deflection is counted and no ticket was filed
    expect(page.locator("#kb-thanks")).to_contain_text("邮件发送失败的常见原因")
    deflection = Deflection.objects.get()
    assert deflection.article_id == article.pk and deflection.query == "邮件发送失败"
    from tickets.models import Ticket

    assert not Ticket.objects.exists()


def test_agent_writes_and_submits_manager_publishes_and_chinese_search_finds_it(
    page, browser, live_server, make_user, support_team
):
    make_user("kbagent", role="agent", team=support_team.name)
    make_user("kbboss", role="manager", team=support_team.name)
    # Given an agent writing a new article in the editor (with a live Markdown preview)
    browser_login(page, "kbagent", "pw-kbagent-123")
    page.goto("/kb/articles/new/")
    page.fill("#id_title", "灰度发布检查清单")
    page.fill("#id_summary", "标签规则灰度发布前要检查的事项")
    page.select_option("#id_kind", "manual")
    page.select_option("#id_language", "zh-hans")
    page.fill("#id_body", "## 检查\n\n- 预览人数\n- **客单价** 条件")
    page.locator("#id_body").press("End")
    expect(page.locator("#markdown-preview strong")).to_have_text("客单价")
    page.click("#article-save")
    # When the agent submits it for review
    page.click("#action-submit")
    expect(page.locator(".kb-status")).to_have_attribute("data-status", "in_review")
    article = Article.objects.get(title="灰度发布检查清单")

    # And a manager publishes it
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 900}, locale="en-US"
    )
    boss = context.new_page()
    browser_login(boss, "kbboss", "pw-kbboss-123")
    boss.goto("/kb/")
    boss.locator("#kb-to-review a", has_text="灰度发布检查清单").click()
    boss.click("#action-publish")
    expect(boss.locator(".kb-status")).to_have_attribute("data-status", "published")
    context.close()

    # Then searching in Chinese finds it, with the word highlighted
    page.goto("/kb/")
    page.fill("#kb-q", "检查清单 灰度")
    page.press("#kb-q", "Enter")
    result = page.locator(".kb-result", has_text="灰度发布检查清单")
    expect(result).to_be_visible()
    expect(result.locator("mark").first).to_be_visible()
    assert Article.objects.get(pk=article.pk).status == "published"
