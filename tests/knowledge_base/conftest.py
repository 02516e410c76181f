import pytest

from tests.knowledge_base.factories import make_article, make_published


@pytest.fixture
def agent2(make_user, support_team):
    return make_user("agent2", role="agent", team=support_team.name)


@pytest.fixture
def published(agent, manager):
    """A published Chinese manual."""
    return make_published(
        agent,
        manager,
        title="CRM 客户标签配置指南",
        summary="如何在 CRM 中为客户配置标签",
        body="## 步骤\n\n1. 打开 CRM\n2. 新建标签规则\n",
        kind="manual",
        language="zh-hans",
    )


@pytest.fixture
def draft(agent):
    return make_article(agent, title="Draft about coupons", body="Coupon redemption steps")


@pytest.fixture
def search_corpus(agent, manager):
    """Chinese and English articles, published, plus one draft that matches everything."""
    articles = {
        "tags": make_published(
            agent,
            manager,
            title="CRM 客户标签配置指南",
            summary="为客户批量打标签",
            body="在 CRM 后台打开标签管理，新建规则并灰度发布。",
            kind="manual",
            language="zh-hans",
        ),
        "email": make_published(
            agent,
            manager,
            title="邮件发送失败的常见原因",
            summary="退信、域名未认证、内容被判为垃圾邮件",
            body="检查 SPF 和 DKIM 配置；查看 ESP 的退信日志。",
            kind="faq",
            language="zh-hans",
        ),
        "dashboard_title": make_published(
            agent,
            manager,
            title="Dashboard filters",
            summary="Filter a dashboard by date range",
            body="Open the dashboard and pick a range.",
            kind="tutorial",
            language="en",
        ),
        "dashboard_body": make_published(
            agent,
            manager,
            title="Weekly report tips",
            summary="Reports for managers",
            body="You can also export a dashboard as CSV from the weekly report page.",
            kind="tutorial",
            language="en",
        ),
        "config": make_published(
            agent,
            manager,
            title="SSO setup",
            summary="Single sign-on",
            body="The configuration of the identity provider needs a metadata URL.",
            kind="manual",
            language="en",
        ),
        "private": make_published(
            agent,
            manager,
            title="私域流量运营手册",
            summary="企业微信社群和客单价提升",
            body="私域用户的复购率和客单价。",
            kind="manual",
            language="zh-hans",
        ),
    }
    articles["draft"] = make_article(
        agent,
        title="客户标签 draft dashboard configuration",
        body="标签 dashboard configure 私域",
        language="en",
    )
    return articles
