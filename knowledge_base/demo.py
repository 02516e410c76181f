"""Demo knowledge base: about thirty articles in Chinese and English, written in bulk (fast, idempotent)."""

from datetime import timedelta
from typing import TextIO

from django.utils import timezone

from accounts.models import User
from knowledge_base.models import Article, ArticleVersion, Category, Deflection
from knowledge_base.search_cache import invalidate_search_counts_on_commit

CATEGORIES = [
    # slug, name, Chinese name, parent slug
    ("crm", "CRM and tags", "CRM 与标签", None),
    ("crm-tag-rules", "Tag rules", "标签规则", "crm"),
    ("messaging", "Email and SMS", "邮件与短信", None),
    ("dashboards", "Dashboards and reports", "看板与报表", None),
    ("campaigns", "Campaigns", "营销活动", None),
    ("private-traffic", "Private traffic", "私域运营", "campaigns"),
    ("retrospectives", "Retrospectives", "复盘", None),
]

P, D, R = Article.Status.PUBLISHED, Article.Status.DRAFT, Article.Status.IN_REVIEW
# title, summary, body, kind, language, category, status, tags
ARTICLES = [
    (
        "邮件发送失败的常见原因",
        "退信、域名未认证、内容触发垃圾邮件过滤、收件人退订是最常见的四类原因。",
        "## 常见原因\n\n1. **退信（硬退信）**：邮箱地址不存在，检查退信日志。\n"
        "2. **发件域名未认证**：确认 SPF、DKIM、DMARC 配置已生效。\n"
        "3. **内容被判为垃圾邮件**：减少图片占比，避免“免费”“中奖”等词。\n"
        "4. **收件人已退订**：退订用户不会再收到营销邮件。\n\n"
        "## 排查步骤\n\n| 步骤 | 在哪里看 |\n|---|---|\n| 查看送达率 | 邮件平台 → 报表 |\n"
        "| 查看退信原因 | 邮件平台 → 退信日志 |\n\n仍无法解决时，请提交工单并附上发送批次号。",
        "faq",
        "zh-hans",
        "messaging",
        P,
        ["邮件", "送达率"],
    ),
    (
        "CRM 客户标签配置指南",
        "在 CRM 中新建标签、编写规则、预览人群并灰度发布。",
        "## 新建标签\n\n在 **客户 → 标签** 页面点击“新建标签”，选择标签分类。\n\n"
        "## 编写规则\n\n规则由条件组成，例如“近 30 天浏览 ≥ 5 次且客单价 ≥ 200”：\n\n"
        '```json\n{"all": [\n  {"event": "page_view", "agg": "count", "window_days": 30, "op": ">=", "value": 5},\n'
        '  {"event": "order", "agg": "avg", "field": "amount", "op": ">=", "value": 200}\n]}\n```\n\n'
        "## 预览与灰度发布\n\n先预览命中人数和样本，再按 10% 灰度发布，确认无误后由经理全量发布。",
        "manual",
        "zh-hans",
        "crm-tag-rules",
        P,
        ["标签", "CRM", "灰度发布"],
    ),
    (
        "标签规则的时间窗口怎么理解",
        "window_days 表示统计最近 N 天的事件；不填表示全部历史。",
        "`window_days: 30` 只统计最近 30 天的事件。最近一次事件距今天数请使用 `days_since_last`。",
        "faq",
        "zh-hans",
        "crm-tag-rules",
        P,
        ["标签"],
    ),
    (
        "How to configure a computed tag rule",
        "Write a rule as a JSON tree, preview it, then roll it out gradually.",
        "## Steps\n\n1. Open **Customers → Tags** and create a tag.\n2. Add conditions: attributes, events, recency.\n"
        "3. Preview the matching customers and the enter/exit diff.\n4. Start a gray release at 10 %.\n\n"
        "A manager approves the full rollout.",
        "manual",
        "en",
        "crm-tag-rules",
        P,
        ["tags", "crm"],
    ),
    (
        "Why did a customer leave a tag?",
        "Membership is recomputed; the history shows which rule version removed the customer.",
        "Open the customer page and look at the tag history: each entry shows the rule version and the time.",
        "faq",
        "en",
        "crm",
        P,
        ["tags"],
    ),
    (
        "导入客户 CSV 的格式要求",
        "UTF-8 编码、首行为表头；错误行会全部列出，文件整体不导入。",
        "必填列：external_id、name。手机号和邮箱会校验格式。任何一行出错，整份文件都不会写入。",
        "faq",
        "zh-hans",
        "crm",
        P,
        ["导入", "CRM"],
    ),
    (
        "Customer CSV import: common errors",
        "Bad dates, duplicate external ids and unknown columns are reported row by row.",
        "Fix every listed row and upload the file again; nothing from a rejected file is written.",
        "faq",
        "en",
        "crm",
        P,
        ["import"],
    ),
    (
        "短信模板审核不通过怎么办",
        "签名未报备、含营销链接未加退订方式是常见原因。",
        "营销短信必须带“回T退订”。变量不可包含链接。审核通常需要 2 小时。",
        "faq",
        "zh-hans",
        "messaging",
        P,
        ["短信"],
    ),
    (
        "Email deliverability checklist",
        "SPF, DKIM and DMARC, a warm sending domain and a clean list.",
        "- Authenticate the sending domain (SPF, DKIM, DMARC).\n- Remove hard bounces after every send.\n"
        "- Keep complaint rate below 0.1 %.\n- Send a seed test before a big campaign.",
        "manual",
        "en",
        "messaging",
        P,
        ["email", "deliverability"],
    ),
    (
        "Dashboard tutorial: filters and drill-down",
        "Filter dashboards by date, team, channel and campaign; click a chart to open the list behind it.",
        "## Filters\n\nUse the filter bar at the top. Every chart reloads on its own.\n\n"
        "## Drill-down\n\nClick a bar to open the matching tickets or campaigns.\n\n"
        "Each chart shows when its data was computed (“as of 10:42”).",
        "tutorial",
        "en",
        "dashboards",
        P,
        ["dashboard"],
    ),
    (
        "Dashboard tutorial: reading SLA attainment",
        "Attainment per urgency, median and p90 times to first response and resolution.",
        "The SLA chart counts a ticket as met when it was resolved before its due time in business hours.",
        "tutorial",
        "en",
        "dashboards",
        P,
        ["dashboard", "sla"],
    ),
    (
        "看板教程：营销看板指标说明",
        "ROI、ROAS、CAC、点击率和转化率的口径。",
        "| 指标 | 口径 |\n|---|---|\n| ROI | (收入 - 花费) / 花费 |\n| ROAS | 收入 / 花费 |\n"
        "| CAC | 花费 / 新客数 |\n| 点击率 | 点击 / 曝光 |\n",
        "tutorial",
        "zh-hans",
        "dashboards",
        P,
        ["看板", "ROI"],
    ),
    (
        "看板教程：导出周报",
        "报表任务在后台运行，完成后可下载 CSV 或 XLSX。",
        "在看板页面点击“导出”，选择格式。相同参数的任务不会重复执行。可设置每周自动发送。",
        "tutorial",
        "zh-hans",
        "dashboards",
        P,
        ["看板", "报表"],
    ),
    (
        "Scheduling weekly reports",
        "A weekly report is generated on Monday morning and e-mailed to the recipients.",
        "Open a dashboard, choose **Schedule**, pick the day and recipients.",
        "tutorial",
        "en",
        "dashboards",
        P,
        ["reports"],
    ),
    (
        "私域运营入门：企业微信社群",
        "私域流量的拉新、促活和复购，以及客单价提升的常用做法。",
        "## 拉新\n\n门店导购添加企业微信。\n\n## 促活\n\n社群每周固定栏目，会员等级权益。\n\n"
        "## 复购\n\n生日券、复购提醒；关注复购率与客单价。",
        "manual",
        "zh-hans",
        "private-traffic",
        P,
        ["私域", "企业微信"],
    ),
    (
        "UTM 链接生成规范",
        "utm_source、utm_medium、utm_campaign 统一小写。",
        "使用活动页面的 UTM 生成器，参数值会自动转为小写，避免同一渠道被拆成多行。",
        "manual",
        "zh-hans",
        "campaigns",
        P,
        ["UTM"],
    ),
    (
        "A/B test: when is there a winner?",
        "A two-proportion z-test after a minimum sample in each variant.",
        "The campaign page shows no winner until both variants reach the minimum sample; then p < 0.05 decides.",
        "faq",
        "en",
        "campaigns",
        P,
        ["ab-test"],
    ),
    (
        "Attribution models explained",
        "First touch, last touch and linear attribution of conversions to channels.",
        "- **First touch** credits the first channel.\n- **Last touch** credits the last.\n"
        "- **Linear** splits the credit evenly.",
        "manual",
        "en",
        "campaigns",
        P,
        ["attribution"],
    ),
    (
        "优惠券核销数据怎么查",
        "在活动数据中按渠道查看核销量和核销率。",
        "核销数据每日更新。如需明细，请提交“数据支持”类工单。",
        "faq",
        "zh-hans",
        "campaigns",
        P,
        ["优惠券", "核销"],
    ),
    (
        "大促前的系统检查清单",
        "双十一等大促前两周完成的配置检查。",
        "- 优惠券叠加规则\n- 短信模板报备\n- 落地页压测\n- 埋点验证\n- 灰度发布新功能",
        "manual",
        "zh-hans",
        "campaigns",
        P,
        ["大促", "双十一"],
    ),
    (
        "How to file a good request",
        "Pick the right type and urgency, describe the expected result, attach screenshots.",
        "Urgent means a promotion is broken right now. Routine is a small change. Planned is next quarter's work.",
        "faq",
        "en",
        None,
        P,
        ["requests"],
    ),
    (
        "工单紧急程度如何选择",
        "紧急：活动正在出问题；常规：小改动；计划：下季度需求。",
        "紧急工单 30 分钟内首次响应，2 小时内解决（工作时间）。",
        "faq",
        "zh-hans",
        None,
        P,
        ["工单", "SLA"],
    ),
    (
        "Landing page tracking setup",
        "Add the tracking snippet and verify events before launch.",
        "Check page_view and order events in the event debugger; wrong events break tag rules.",
        "tutorial",
        "en",
        "campaigns",
        P,
        ["tracking"],
    ),
    (
        "会员等级规则说明（旧版）",
        "2025 年的会员等级规则，已被新规则取代。",
        "旧版规则按累计消费划分四个等级。",
        "manual",
        "zh-hans",
        "crm",
        P,
        ["会员等级"],
    ),
    (
        "Mini-program banner configuration",
        "Change the home banner rotation and its schedule.",
        "Banners rotate every 5 seconds; upload images at 750×300.",
        "manual",
        "en",
        "campaigns",
        D,
        ["mini-program"],
    ),
    (
        "直播带货数据对接说明",
        "直播平台订单回传到 CRM 的字段映射。",
        "订单号、用户手机号、金额、直播间 ID。",
        "manual",
        "zh-hans",
        "campaigns",
        R,
        ["直播"],
    ),
]
STALE_TITLE = "会员等级规则说明（旧版）"


def _category_map() -> dict[str, Category]:
    found = {c.slug: c for c in Category.objects.all()}
    for position, (slug, name, name_zh, parent) in enumerate(CATEGORIES):
        if slug not in found:
            found[slug] = Category.objects.create(
                slug=slug,
                name=name,
                name_zh=name_zh,
                parent=found.get(parent) if parent else None,
                position=position,
            )
    return found


def seed(stdout: TextIO, small: bool = False) -> None:
    """Create categories, the demo articles (each with its first version) and retrospectives of demo tickets."""
    people = {u.username: u for u in User.objects.filter(username__in=["agent", "agent2", "manager"])}
    if len(people) < 3:
        stdout.write("knowledge_base: demo users missing, skipped")
        return
    categories = _category_map()
    existing = set(Article.objects.values_list("title", flat=True))
    now = timezone.now()
    rows = ARTICLES[:10] if small else ARTICLES
    new = []
    for index, (title, summary, body, kind, language, category, status, tags) in enumerate(rows):
        if title in existing:
            continue
        published = status == P
        reviewed = now - timedelta(days=200) if title == STALE_TITLE else now - timedelta(days=index)
        article = Article(
            title=title,
            summary=summary,
            body=body,
            kind=kind,
            language=language,
            category=categories.get(category) if category else None,
            status=status,
            tags=tags,
            owner=people["agent" if index % 2 == 0 else "agent2"],
            reviewer=people["manager"] if published else None,
            published_at=reviewed if published else None,
            reviewed_at=reviewed if published else None,
            version_number=1,
            view_count=(37 * (index + 3)) % 400,
        )
        article.refresh_search_text()
        new.append(article)
    created = Article.objects.bulk_create(new)
    invalidate_search_counts_on_commit()  # bulk_create does not call save(): counts start afresh
    ArticleVersion.objects.bulk_create(
        [
            ArticleVersion(
                article=a,
                number=1,
                title=a.title,
                summary=a.summary,
                body=a.body,
                kind=a.kind,
                language=a.language,
                category=a.category,
                status=a.status,
                note="Demo",
                created_by=a.owner,
            )
            for a in created
        ]
    )
    if created:
        by_title = {a.title: a for a in Article.objects.filter(title__in=[r[0] for r in rows])}
        pairs = [
            ("邮件发送失败的常见原因", "Email deliverability checklist"),
            ("CRM 客户标签配置指南", "How to configure a computed tag rule"),
            ("CRM 客户标签配置指南", "标签规则的时间窗口怎么理解"),
        ]
        for a, b in pairs:
            if a in by_title and b in by_title:
                by_title[a].related.add(by_title[b])
    retros = _retrospectives(people, limit=2 if small else 4)
    deflections = _deflections(days=14 if small else 60)
    stdout.write(
        f"knowledge_base: {len(created)} articles, {retros} retrospectives, {deflections} deflections"
    )


def _deflections(*, days: int) -> int:
    """Requesters who left the request form because an article helped, spread over recent days."""
    if Deflection.objects.exists():
        return 0
    requesters = list(User.objects.filter(username__in=["requester", "brand"]))
    articles = list(
        Article.objects.filter(status=P, kind__in=["faq", "manual", "tutorial"]).order_by("id")[:8]
    )
    if not requesters or not articles:
        return 0
    now = timezone.now()
    rows = []
    for n in range(days):
        for k in range((n * 7) % 3):
            article = articles[(n + k) % len(articles)]
            rows.append(
                (requesters[(n + k) % len(requesters)], article, now - timedelta(days=n, hours=k * 3))
            )
    created = Deflection.objects.bulk_create(
        [Deflection(user=u, article=a, query=a.title[:20], source="suggestion") for u, a, _when in rows]
    )
    for deflection, (_u, _a, when) in zip(created, rows, strict=True):
        Deflection.objects.filter(pk=deflection.pk).update(created_at=when)  # auto_now_add on insert
    return len(created)


def _retrospectives(people: dict[str, User], *, limit: int) -> int:
    """Publish retrospectives of resolved demo tickets (through the same one-click service)."""
    try:
        from tickets.models import Retrospective
    except ImportError:
        return 0
    from knowledge_base import services

    if Article.objects.filter(kind=Article.Kind.RETROSPECTIVE, related_tickets__isnull=False).exists():
        return 0  # seeded before: running again changes nothing
    count, seen = 0, set()
    candidates = Retrospective.objects.select_related("ticket").filter(
        ticket__status__in=services.RETROSPECTIVE_STATUSES
    )
    for retro in candidates.order_by("ticket_id")[: limit * 5]:
        if count >= limit or retro.ticket.title in seen:
            continue
        seen.add(retro.ticket.title)
        article = services.article_from_ticket(ticket=retro.ticket, by=people["agent"])
        services.article_submit(article=article, by=people["agent"])
        services.article_publish(article=article, by=people["manager"])
        count += 1
    return count
