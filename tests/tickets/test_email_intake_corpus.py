"""E-mail intake (issue 21): every message of the corpus (tests/tickets/mail_corpus/, shaped like real mail
from Outlook, Foxmail, Gmail, QQ Mail, Exchange and MTAs) and what it must become: a ticket with its decoded
title, text and files; a reply on the ticket it answers; or nothing (auto-replies, bounces, bulk mail)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.tickets.email_intake_support import CORPUS, corpus_mail, intake_settings
from tests.tickets.factories import make_ticket
from tickets.intake_email import email_receive
from tickets.models import Comment, Ticket

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Expected:
    action: str  # ticket | comment | ignored | rejected
    title: str = ""
    body: tuple[str, ...] = ()  # fragments the ticket's description / the comment contains
    absent: tuple[str, ...] = ()  # fragments it must not contain
    files: tuple[str, ...] = ()  # attachment names, sorted
    reason: str = ""
    before: tuple[str, ...] = ()  # corpus messages handled first
    exact_body: str | None = None
    thread_on: str = "base"  # comment: "base" (MT-1001) or "first" (the ticket of `before[0]`)
    duplicate: bool = False
    extra: dict = field(default_factory=dict)


T, C, IG, R = "ticket", "comment", "ignored", "rejected"
FIRST = "01_plain_utf8.eml"

CASES: dict[str, Expected] = {
    FIRST: Expected(T, "双十一优惠券页面价格错误", ("双十一优惠券页面显示 20 元，应该是 30 元。",)),
    "02_gbk_subject.eml": Expected(T, "会员积分报表导出", ("请导出上个月的会员积分报表，按城市汇总。",)),
    "03_gb2312_label_gbk_chars.eml": Expected(T, "朱镕喆的活动申请", ("申请人：朱镕喆，预算五万元。",)),
    "04_gb18030_base64.eml": Expected(T, "数据核对𠀀", ("请核对订单数据𠀀，谢谢。",)),
    "05_big5.eml": Expected(T, "活動頁面無法開啟", ("台北門市的活動頁面無法開啟，請協助。",)),
    "06_raw_utf8_subject.eml": Expected(T, "短信模板修改", ("正文：短信模板需要修改。",)),
    "07_raw_gbk_subject.eml": Expected(T, "企业微信推送失败", ("推送任务一直失败。",)),
    "08_multipart_alternative.eml": Expected(
        T, "落地页按钮颜色", ("落地页的按钮请改成**红色**。", "- 首页\n- 活动页"), absent=("<b>", "<p>")
    ),
    "09_html_script_style.eml": Expected(
        T,
        "Tracking code on the checkout page",
        ("Please add the tracking code.", "[the spec](https://docs.example.com/tag)"),
        absent=("steal", "alert", "color:red", "javascript", "onclick", "evil", "tracker.example.net", "<"),
    ),
    "10_outlook_html.eml": Expected(
        T,
        "Dashboard refresh",
        ("Hi team,", "Please refresh the “Spring sale” dashboard."),
        absent=("MsoNormal", "o:p", "shapedefaults", "Calibri", "WordSection", "&nbsp;"),
    ),
    "11_inline_image.eml": Expected(
        T,
        "截图：报错页面",
        ("支付页报错，见截图：", "[image: image001.png]"),
        absent=("cid:",),
        files=("image001.png",),
    ),
    "12_attachment_rfc2231.eml": Expected(
        T, "Monthly report figures", ("Figures attached.",), files=("月报.csv",)
    ),
    "13_attachment_rfc2231_gbk_continuation.eml": Expected(
        T, "Budget sheet", ("Budget attached.",), files=("二零二六年双十一活动预算表.csv",)
    ),
    "14_attachment_rfc2047_name.eml": Expected(
        T, "Campaign plan", ("Plan attached.",), files=("活动方案.pdf",)
    ),
    "15_foxmail_gbk_attachment.eml": Expected(
        T,
        "客户名单模板",
        ("附件是客户名单模板。", "张三"),
        absent=("微软雅黑", "font"),
        files=("客户名单.xlsx",),
    ),
    "16_forwarded_inline.eml": Expected(
        T, "活动页面打不开", ("FYI，门店反馈的问题。", "活动页面一直转圈，打不开。")
    ),
    "17_forwarded_rfc822.eml": Expected(
        T, "门店海报", ("Forwarding the store's mail.", "海报尺寸不对，请重新设计。")
    ),
    "18_reply_in_reply_to.eml": Expected(
        C, body=("Thanks, the price is right now.",), absent=("We fixed the coupon", "wrote:")
    ),
    "19_reply_references.eml": Expected(C, body=("One more detail: only the app shows it.",)),
    "20_reply_subject_key.eml": Expected(
        C, body=("已确认，问题解决了。",), absent=("原始邮件", "我们已修复")
    ),
    "21_reply_to_own_first_mail.eml": Expected(
        C, body=("补充：安卓端也有问题。",), absent=("写道", "显示 20 元"), before=(FIRST,), thread_on="first"
    ),
    "22_outlook_reply.eml": Expected(
        C, body=("页面链接是 https://shop.example.com/coupon",), absent=("请提供页面链接", "发件人", "_____")
    ),
    "23_bounce_dsn.eml": Expected(IG, reason="delivery status notification"),
    "24_bounce_mailer_daemon.eml": Expected(IG, reason="bounce (mailer-daemon sender)"),
    "25_auto_reply_ooo.eml": Expected(IG, reason="auto-submitted (auto-replied)"),
    "26_exchange_auto_reply.eml": Expected(IG, reason="x-auto-response-suppress header"),
    "27_x_autoreply.eml": Expected(IG, reason="x-autoreply header"),
    "28_precedence_bulk.eml": Expected(IG, reason="precedence bulk"),
    "29_precedence_list.eml": Expected(IG, reason="precedence list"),
    "30_empty_body.eml": Expected(T, "请回电", exact_body=""),
    "31_no_subject.eml": Expected(T, "(no subject)", exact_body="The export button is gone."),
    "32_huge_attachment.eml": Expected(
        T,
        "Full export",
        ("The full export is attached.", "Attachment export.pdf was not accepted: export.pdf is 0.2 MB"),
        files=("notes.txt",),
    ),
    "33_exe_attachment.eml": Expected(
        T, "Installer", ("Attachment setup.exe was not accepted: This file type is not allowed.",)
    ),
    "34_unknown_sender.eml": Expected(R, reason="unknown sender"),
    "35_unknown_sender_auto_reply.eml": Expected(IG, reason="auto-submitted (auto-replied)"),
    "36_duplicate_redelivery.eml": Expected(T, before=(FIRST,), duplicate=True),
    "37_quoted_printable.eml": Expected(
        T, "人群标签更新", ("请把高价值客户标签的条件改成近90天消费满500元，" * 3,)
    ),
    "38_mislabelled_charset.eml": Expected(T, "Report label", ("报表标题应为“月度销售”。",)),
    "39_from_ourselves.eml": Expected(IG, reason="sent by this system"),
    "40_unknown_sender_reply.eml": Expected(R, reason="unknown sender"),
    "41_big5_attachment_rfc2231.eml": Expected(T, "Store list", ("List attached.",), files=("門市清單.txt",)),
}


def test_the_corpus_is_complete():
    """Every file in the folder has an expectation, and there are at least 30."""
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(CASES)
    assert len(CASES) >= 30


@pytest.fixture
def base(settings, requester, agent, manager, support_team) -> Ticket:
    intake_settings(settings, support_team.name)
    return make_ticket(requester)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_message(name, base, requester):
    # given
    expected = CASES[name]
    earlier = [email_receive(corpus_mail(before, key=base.key)) for before in expected.before]
    tickets_before = Ticket.objects.count()
    comments_before = Comment.objects.count()

    # when
    outcome = email_receive(corpus_mail(name, key=base.key))

    # then
    assert outcome.action == expected.action, outcome
    if expected.duplicate:
        assert outcome.duplicate and outcome.key == earlier[0].key
        assert (Ticket.objects.count(), Comment.objects.count()) == (tickets_before, comments_before)
        return
    if expected.action == T:
        ticket = Ticket.objects.get(key=outcome.key)
        assert outcome.line() == ticket.key
        assert ticket.key != base.key
        assert (ticket.channel, ticket.requester, ticket.status) == ("email", requester, "new")
        assert ticket.title == expected.title
        text = ticket.description
        assert sorted(a.original_name for a in ticket.attachments.all()) == sorted(expected.files)
        assert Comment.objects.count() == comments_before
    elif expected.action == C:
        target = base.key if expected.thread_on == "base" else earlier[0].key
        assert outcome.key == target
        assert Ticket.objects.count() == tickets_before
        comment = Comment.objects.get()
        assert (comment.ticket.key, comment.author, comment.internal) == (target, requester, False)
        text = comment.body
    else:
        assert outcome.reason == expected.reason
        assert outcome.line() == f"{expected.action}: {expected.reason}"
        assert (Ticket.objects.count(), Comment.objects.count()) == (tickets_before, comments_before)
        return
    if expected.exact_body is not None:
        assert text == expected.exact_body
    for fragment in expected.body:
        assert fragment in text, (fragment, text)
    for fragment in expected.absent:
        assert fragment not in text, (fragment, text)
