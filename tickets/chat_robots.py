"""Team chat robots: the message formats DingTalk, WeCom (企业微信) and Feishu incoming webhooks accept, their
signatures, the reading of their JSON replies, and deliveries that are retried until the robot accepts
them or fail visibly (a failed delivery shows on the team's robot page and notifies the managers).

- DingTalk custom robot: `{"msgtype": "markdown", "markdown": {"title", "text"}}`; when signing is on,
  `timestamp` (milliseconds) and `sign` = urlencode(base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret")))
  go in the query string. It answers `{"errcode": 0, "errmsg": "ok"}`; any other errcode is a refusal
  even with HTTP 200 (310000: bad signature or keyword missing; 130101: sending too fast).
- WeCom group robot: `{"msgtype": "markdown", "markdown": {"content"}}`; the key is in the URL. Replies
  like DingTalk's (45009: too frequent; 93000: invalid webhook).
- Feishu custom bot: `{"msg_type": "interactive", "card": {...}}` (or `"text"`); when signing is on,
  `timestamp` (seconds) and `sign` = base64(HMAC-SHA256(key="timestamp\\nsecret", msg="")) go in the body.
  It answers `{"code": 0, "msg": "success", ...}` (19021: bad signature; 19024: keyword missing; 11232:
  frequency limited).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Team, User
from config import outbound
from config.task_queue import enqueue
from tickets.models import ChatAttempt, ChatDelivery, ChatRobot

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_SECONDS = 30  # the n-th retry waits 30 s × 2^(n-1), at most 10 minutes
TIMEOUT_SECONDS = 5

# Refusals that another try cannot change (a wrong secret, a missing keyword, a deleted robot): the delivery
# fails at once. Anything else (rate limits, server errors, a network failure) is tried again.
PERMANENT_CODES = {
    ChatRobot.Kind.DINGTALK: {"310000", "300001", "400101", "400102", "400013"},
    ChatRobot.Kind.WECOM: {"93000", "40008", "44004", "40058"},
    ChatRobot.Kind.FEISHU: {"19021", "19024", "19022", "19001", "9499"},
}


# --- signatures ----------------------------------------------------------------------------------------


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: urlencode(base64(HMAC-SHA256 with the secret as key over "timestamp\\nsecret"))."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu: base64(HMAC-SHA256 with "timestamp\\nsecret" as key over an empty message)."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- formats -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    url: str
    body: dict[str, Any]


def _with_keyword(robot: ChatRobot, title: str) -> str:
    keyword = robot.keyword.strip()
    return title if not keyword or keyword in title else f"{keyword} {title}"


def build_request(
    robot: ChatRobot, *, title: str, text: str, url: str = "", now: float | None = None
) -> Request:
    """The URL and JSON body that the robot's service accepts for a message (signed when it has a secret)."""
    now = time.time() if now is None else now
    title = _with_keyword(robot, title)
    link = f"\n\n[{url}]({url})" if url else ""
    if robot.kind == ChatRobot.Kind.DINGTALK:
        target = robot.webhook_url
        if robot.secret:
            stamp = int(now * 1000)
            joiner = "&" if "?" in target else "?"
            target = f"{target}{joiner}timestamp={stamp}&sign={dingtalk_sign(robot.secret, stamp)}"
        body = {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n\n{text}{link}"}}
        return Request(target, body)
    if robot.kind == ChatRobot.Kind.WECOM:
        return Request(
            robot.webhook_url, {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n{text}{link}"}}
        )
    card = {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": title}, "template": "red"},
        "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": f"{text}{link}"}}],
    }
    body: dict[str, Any] = {"msg_type": "interactive", "card": card}
    if robot.secret:
        stamp = int(now)
        body = {"timestamp": str(stamp), "sign": feishu_sign(robot.secret, stamp), **body}
    return Request(robot.webhook_url, body)


# --- replies -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    ok: bool
    code: str
    message: str
    permanent: bool = False


def read_reply(kind: str, http_status: int, text: str) -> Reply:
    """What the robot answered: HTTP 200 is not enough, the JSON's errcode (Feishu: code) must be 0."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Reply(False, str(http_status), (text or "")[:500] or f"HTTP {http_status}")
    key = "code" if kind == ChatRobot.Kind.FEISHU else "errcode"
    if key not in data and "StatusCode" in data:
        key = "StatusCode"
    code = data.get(key)
    message = str(data.get("msg") or data.get("errmsg") or data.get("StatusMessage") or "")[:500]
    if http_status == 200 and code in (0, "0"):
        return Reply(True, "0", message)
    code_text = str(code if code is not None else http_status)
    return Reply(
        False, code_text, message or f"HTTP {http_status}", code_text in PERMANENT_CODES.get(kind, set())
    )


# --- deliveries ----------------------------------------------------------------------------------------


def robots_for_team(team_id: int) -> list[ChatRobot]:
    return list(ChatRobot.objects.filter(team_id=team_id, enabled=True).order_by("pk"))


def chat_post(*, team: Team | int, title: str, text: str, url: str = "") -> list[ChatDelivery]:
    """Queue a message for each of the team's enabled robots (customers' contact data masked); sent from
    Celery after commit."""
    from privacy import personal_data

    team_id = team if isinstance(team, int) else team.pk
    # a chat group is no reader with `view_pii`: customers' e-mail addresses and phone numbers are masked
    title, text = personal_data.text_for(title, viewer=None), personal_data.text_for(text, viewer=None)
    deliveries = ChatDelivery.objects.bulk_create(
        ChatDelivery(robot=robot, title=title[:200], text=text, url=url[:500])
        for robot in robots_for_team(team_id)
    )
    for delivery in deliveries:
        enqueue("tickets.tasks.deliver_chat", delivery.pk)
    return deliveries


def _absolute(url: str) -> str:
    from django.conf import settings

    base = getattr(settings, "SITE_URL", "") or ""
    return f"{base.rstrip('/')}{url}" if url.startswith("/") and base else url


def delivery_attempt(delivery_id: int) -> ChatDelivery | None:
    """One try: POST, record the attempt and its reply, and mark the delivery sent, or failed when the
    refusal is permanent or the attempts are used up (then the managers are told). Returns the delivery
    (its status still `pending` when another try is due), or None when it is gone or already finished."""
    with transaction.atomic():
        delivery = (
            ChatDelivery.objects.select_for_update()
            .select_related("robot", "robot__team")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None or delivery.status != ChatDelivery.Status.PENDING:
            return None
        robot = delivery.robot
        request = build_request(robot, title=delivery.title, text=delivery.text, url=_absolute(delivery.url))
        try:
            response = outbound.session().post(
                request.url, json=request.body, timeout=TIMEOUT_SECONDS, allow_redirects=False
            )
            status, reply = response.status_code, read_reply(robot.kind, response.status_code, response.text)
        except outbound.OutboundRefused as exc:  # no retry reaches an address it may not reach
            status, reply = None, Reply(False, "refused", str(exc)[:500], permanent=True)
        except requests.RequestException as exc:
            status, reply = None, Reply(False, "network", str(exc)[:500])
        delivery.attempts += 1
        ChatAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=timezone.now(),
            http_status=status,
            code=reply.code[:20],
            message=reply.message,
            ok=reply.ok,
        )
        if reply.ok:
            delivery.status, delivery.finished_at, delivery.last_error = (
                ChatDelivery.Status.SENT,
                timezone.now(),
                "",
            )
        else:
            delivery.last_error = f"{reply.code}: {reply.message}"
            if reply.permanent or delivery.attempts >= MAX_ATTEMPTS:
                delivery.status, delivery.finished_at = ChatDelivery.Status.FAILED, timezone.now()
                _tell_failure(delivery)
        delivery.save(update_fields=["attempts", "status", "finished_at", "last_error"])
    if delivery.status == ChatDelivery.Status.FAILED:
        log.warning("chat delivery %s to robot %s failed: %s", delivery.pk, robot.pk, delivery.last_error)
    return delivery


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` tries."""
    return min(BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), 600)


def _tell_failure(delivery: ChatDelivery) -> None:
    from django.urls import reverse

    from accounts.selectors import managers
    from accounts.services import notify

    robot = delivery.robot
    notify(
        recipients=list(managers()),
        kind="chat.delivery_failed",
        params={
            "robot": robot.name,
            "team": str(robot.team),
            "attempts": delivery.attempts,
            "error": delivery.last_error,
        },
        url=reverse("tickets:oncall_robots", args=[robot.team_id]),
    )


# --- robots (the team's settings page) -----------------------------------------------------------------


@transaction.atomic
def chat_robot_save(*, team: Team, by: User, robot: ChatRobot | None = None, **values: Any) -> ChatRobot:
    """A manager adds or changes a team's robot; an empty secret keeps the stored one. The secret never
    enters the audit trail."""
    from django.core.exceptions import PermissionDenied
    from django.utils.translation import gettext as _

    from accounts.services import audit_record
    from tickets import permissions

    if not permissions.can_edit_oncall(by):
        raise PermissionDenied(_("Only managers set team chat robots."))
    robot = robot or ChatRobot(team=team)
    keep_secret = not values.get("secret") and robot.pk is not None
    for name, value in values.items():
        if name == "secret" and keep_secret:
            continue
        setattr(robot, name, value.strip() if isinstance(value, str) else value)
    refused = outbound.url_error(robot.webhook_url) if robot.webhook_url else ""
    if refused:
        raise ValidationError({"webhook_url": [refused]})
    robot.full_clean()
    robot.save()
    audit_record(
        actor=by,
        action="tickets.chat_robot_save",
        obj=robot,
        changes={
            "team": team.pk,
            "kind": robot.kind,
            "name": robot.name,
            "enabled": robot.enabled,
            "signed": bool(robot.secret),
        },
    )
    return robot


@transaction.atomic
def chat_robot_delete(*, robot: ChatRobot, by: User) -> None:
    from django.core.exceptions import PermissionDenied
    from django.utils.translation import gettext as _

    from accounts.services import audit_record
    from tickets import permissions

    if not permissions.can_edit_oncall(by):
        raise PermissionDenied(_("Only managers set team chat robots."))
    audit_record(actor=by, action="tickets.chat_robot_delete", obj=robot, changes={"name": robot.name})
    robot.delete()
