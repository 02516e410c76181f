"""Team chat robots (issue 21): the bodies DingTalk, WeCom and Feishu accept, their signatures computed the
way their documentation shows, the robots' JSON replies (recorded in chat_robot_replies/) served by a
local receiver on loopback, retries with every attempt recorded, and a failure that is never silent."""

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from accounts.models import Notification
from tests.conftest import in_english
from tickets import chat_robots
from tickets.chat_robots import build_request, chat_post, delivery_attempt, read_reply
from tickets.models import ChatAttempt, ChatDelivery, ChatRobot

REPLIES = {
    kind: json.loads((Path(__file__).parent / "chat_robot_replies" / f"{kind}.json").read_text())
    for kind in ("dingtalk", "wecom", "feishu")
}
SECRET = "SECb7e9c1d2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0"
NOW = 1_765_000_000.123  # seconds since the epoch


class Receiver:
    """A robot endpoint on 127.0.0.1: answers with the queued replies in order (the last one repeats) and
    keeps what it received."""

    def __init__(self) -> None:
        self.replies: list[dict] = []
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                parsed = urllib.parse.urlsplit(self.path)
                outer.received.append({"path": parsed.path, "query": parsed.query, "body": body})
                reply = outer.replies.pop(0) if len(outer.replies) > 1 else outer.replies[0]
                data = json.dumps(reply["body"]).encode()
                self.send_response(reply["status"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _robot(team, kind: str, url: str, secret: str = "", keyword: str = "") -> ChatRobot:
    return ChatRobot.objects.create(
        team=team, name=f"{kind} robot", kind=kind, webhook_url=url, secret=secret, keyword=keyword
    )


# --- signatures as the documentation computes them -----------------------------------------------------


def test_dingtalk_signature_matches_the_documented_computation():
    timestamp = 1577262236757
    # DingTalk's Python sample: hmac(secret, "timestamp\nsecret", sha256) → base64 → quote_plus
    string_to_sign = f"{timestamp}\n{SECRET}"
    hmac_code = hmac.new(
        SECRET.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256
    ).digest()
    expected = urllib.parse.quote_plus(base64.b64encode(hmac_code))
    assert chat_robots.dingtalk_sign(SECRET, timestamp) == expected
    assert "%" in expected or expected.isalnum()  # url-safe as a query value


def test_feishu_signature_matches_the_documented_computation():
    timestamp = 1599360473
    # Feishu's Python sample: hmac(key="timestamp\nsecret", msg="", sha256) → base64
    key = f"{timestamp}\n{SECRET}"
    expected = base64.b64encode(
        hmac.new(key.encode("utf-8"), b"", digestmod=hashlib.sha256).digest()
    ).decode()
    assert chat_robots.feishu_sign(SECRET, timestamp) == expected


# --- the bodies --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dingtalk_markdown_with_signature_in_the_query(support_team):
    robot = _robot(
        support_team,
        "dingtalk",
        "https://oapi.dingtalk.com/robot/send?access_token=abc",
        SECRET,
        keyword="告警",
    )
    request = build_request(
        robot, title="MT-1001 breached", text="Checkout down", url="https://hub/r/MT-1001/", now=NOW
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query["access_token"] == ["abc"] and query["timestamp"] == ["1765000000123"]
    # parse_qs decodes once: the base64 value itself
    raw = base64.b64encode(
        hmac.new(SECRET.encode(), f"1765000000123\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query["sign"] == [raw]
    assert request.body["msgtype"] == "markdown"
    assert set(request.body["markdown"]) == {"title", "text"}
    assert request.body["markdown"]["title"].startswith("告警")  # the robot's keyword is in every message
    assert "Checkout down" in request.body["markdown"]["text"]


@pytest.mark.django_db
def test_wecom_markdown_content(support_team):
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    request = build_request(robot, title="MT-1001 breached", text="Checkout down", now=NOW)
    assert request.url == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
    assert request.body == {
        "msgtype": "markdown",
        "markdown": {"content": "**MT-1001 breached**\nCheckout down"},
    }


@pytest.mark.django_db
def test_feishu_interactive_card_with_signature_in_the_body(support_team):
    robot = _robot(support_team, "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/x", SECRET)
    request = build_request(robot, title="MT-1001 breached", text="Checkout down", now=NOW)
    body = request.body
    assert body["msg_type"] == "interactive"
    assert body["timestamp"] == "1765000000"
    assert body["sign"] == chat_robots.feishu_sign(SECRET, 1765000000)
    assert body["card"]["header"]["title"]["content"] == "MT-1001 breached"
    assert body["card"]["elements"][0]["text"] == {"tag": "lark_md", "content": "Checkout down"}


@pytest.mark.django_db
def test_unsigned_robots_send_no_signature(support_team):
    feishu = build_request(
        _robot(support_team, "feishu", "https://open.feishu.cn/x"), title="t", text="x", now=NOW
    )
    ding = build_request(
        _robot(support_team, "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=a"),
        title="t",
        text="x",
    )
    assert "sign" not in feishu.body and "sign=" not in ding.url


# --- the replies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "case", "ok", "permanent"),
    [
        ("dingtalk", "success", True, False),
        ("dingtalk", "bad_signature", False, True),
        ("dingtalk", "keyword_mismatch", False, True),
        ("dingtalk", "rate_limited", False, False),
        ("wecom", "success", True, False),
        ("wecom", "invalid_key", False, True),
        ("wecom", "invalid_message", False, True),
        ("wecom", "rate_limited", False, False),
        ("feishu", "success", True, False),
        ("feishu", "bad_signature", False, True),
        ("feishu", "keyword_mismatch", False, True),
        ("feishu", "rate_limited", False, False),
    ],
)
def test_recorded_replies_are_read_by_their_code_not_the_http_status(kind, case, ok, permanent):
    recorded = REPLIES[kind][case]
    reply = read_reply(kind, recorded["status"], json.dumps(recorded["body"]))
    assert recorded["status"] == 200
    assert (reply.ok, reply.permanent) == (ok, permanent)
    if not ok:
        assert reply.message and reply.code != "0"


def test_a_non_json_reply_is_a_failure_to_retry():
    reply = read_reply("dingtalk", 502, "<html>Bad Gateway</html>")
    assert not reply.ok and not reply.permanent and reply.code == "502"


# --- deliveries against the local receiver ------------------------------------------------------------------


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Post through the real task. Inline (eager) Celery runs a retry at once, in the same call, and then
    reports the Retry of the first try as its outcome: that is not propagated as an error here."""
    from config.celery import app as celery_app

    propagates = celery_app.conf.task_eager_propagates
    celery_app.conf.task_eager_propagates = False

    def _deliver(team, title="MT-1001 breached", text="Checkout down"):
        with django_capture_on_commit_callbacks(execute=True):
            return chat_post(team=team, title=title, text=text)

    yield _deliver
    celery_app.conf.task_eager_propagates = propagates


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["dingtalk", "wecom", "feishu"])
def test_an_accepted_message_is_sent_with_one_attempt(receiver, support_team, kind, deliver):
    receiver.replies = [REPLIES[kind]["success"]]
    _robot(support_team, kind, f"{receiver.url}/robot/send?access_token=t", SECRET if kind != "wecom" else "")
    with_capture = deliver(support_team)
    [delivery] = ChatDelivery.objects.all()
    assert len(with_capture) == 1
    assert delivery.status == "sent" and delivery.attempts == 1
    [attempt] = ChatAttempt.objects.filter(delivery=delivery)
    assert attempt.ok and attempt.http_status == 200 and attempt.code == "0"
    [received] = receiver.received
    assert received["path"] == "/robot/send"
    if kind == "dingtalk":  # the receiver checks the signature the way DingTalk does
        query = urllib.parse.parse_qs(received["query"])
        stamp, sign = query["timestamp"][0], query["sign"][0]
        digest = hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()
        assert base64.b64decode(sign) == digest
    if kind == "feishu":
        body = received["body"]
        digest = hmac.new(f"{body['timestamp']}\n{SECRET}".encode(), b"", hashlib.sha256).digest()
        assert base64.b64decode(body["sign"]) == digest


@pytest.mark.django_db(transaction=True)
def test_a_rate_limited_message_is_retried_until_accepted(receiver, support_team, deliver):
    receiver.replies = [
        REPLIES["dingtalk"]["rate_limited"],
        REPLIES["dingtalk"]["rate_limited"],
        REPLIES["dingtalk"]["success"],
    ]
    _robot(support_team, "dingtalk", f"{receiver.url}/robot/send?access_token=t", SECRET)
    deliver(support_team)
    delivery = ChatDelivery.objects.get()
    assert delivery.status == "sent" and delivery.attempts == 3
    assert list(ChatAttempt.objects.filter(delivery=delivery).values_list("ok", "code")) == [
        (False, "130101"),
        (False, "130101"),
        (True, "0"),
    ]
    assert len(receiver.received) == 3


@pytest.mark.django_db(transaction=True)
def test_a_bad_signature_fails_at_once_and_tells_the_managers(receiver, support_team, manager, deliver):
    receiver.replies = [REPLIES["feishu"]["bad_signature"]]
    _robot(support_team, "feishu", f"{receiver.url}/hook/x", "wrong-secret")
    deliver(support_team)
    delivery = ChatDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "19021" in delivery.last_error
    notice = Notification.objects.get(recipient=manager, kind="chat.delivery_failed")
    assert notice.params["attempts"] == 1 and "19021" in notice.params["error"]


@pytest.mark.django_db(transaction=True)
def test_a_robot_that_keeps_refusing_fails_after_the_last_attempt(receiver, support_team, manager, deliver):
    receiver.replies = [REPLIES["wecom"]["rate_limited"]]
    _robot(support_team, "wecom", f"{receiver.url}/cgi-bin/webhook/send?key=k")
    deliver(support_team)
    delivery = ChatDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == chat_robots.MAX_ATTEMPTS
    assert ChatAttempt.objects.filter(delivery=delivery).count() == chat_robots.MAX_ATTEMPTS
    assert Notification.objects.filter(recipient=manager, kind="chat.delivery_failed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_robot_is_recorded_and_retried(support_team, manager, deliver):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _robot(support_team, "dingtalk", f"http://127.0.0.1:{port}/robot/send?access_token=t")
    deliver(support_team)
    delivery = ChatDelivery.objects.get()
    assert delivery.status == "failed" and delivery.attempts == chat_robots.MAX_ATTEMPTS
    assert set(ChatAttempt.objects.filter(delivery=delivery).values_list("code", flat=True)) == {"network"}


def test_backoff_grows_and_is_capped():
    assert [chat_robots.retry_delay(n) for n in (1, 2, 3, 6, 10)] == [30, 60, 120, 600, 600]


@pytest.mark.django_db
def test_a_finished_delivery_is_not_sent_again(support_team):
    robot = _robot(support_team, "wecom", "http://127.0.0.1:9/x")
    delivery = ChatDelivery.objects.create(robot=robot, title="t", text="x", status="sent")
    assert delivery_attempt(delivery.pk) is None


# --- the robots page -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_failed_delivery_shows_on_the_team_pages(client_for, support_team, agent):
    robot = _robot(support_team, "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=a", SECRET)
    ChatDelivery.objects.create(
        robot=robot,
        title="MT-1 breached",
        text="x",
        status="failed",
        attempts=5,
        last_error="130101: send too fast",
    )
    client = client_for(in_english(agent))
    team_page = client.get(f"/requests/oncall/teams/{support_team.pk}/").content.decode()
    assert 'id="failed-deliveries"' in team_page
    log = client.get(f"/requests/oncall/teams/{support_team.pk}/robots/").content.decode()
    assert 'data-status="failed"' in log and "130101: send too fast" in log
    assert SECRET not in log  # the secret never leaves the server


@pytest.mark.django_db
def test_managers_add_a_robot_and_the_secret_is_not_audited(client_for, support_team, manager):
    from accounts.models import AuditEntry

    response = client_for(manager).post(
        f"/requests/oncall/teams/{support_team.pk}/robots/",
        {
            "name": "Ops DingTalk",
            "kind": "dingtalk",
            "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=a",
            "secret": SECRET,
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    robot = ChatRobot.objects.get()
    assert robot.secret == SECRET
    entry = AuditEntry.objects.get(action="tickets.chat_robot_save")
    assert SECRET not in json.dumps(entry.changes) and entry.changes["signed"] is True


@pytest.mark.django_db
def test_a_robot_url_that_is_not_http_is_refused_naming_the_field(client_for, support_team, manager):
    response = client_for(in_english(manager)).post(
        f"/requests/oncall/teams/{support_team.pk}/robots/",
        {"name": "x", "kind": "wecom", "webhook_url": "ftp://example.com/x"},
    )
    assert response.status_code == 400 and b'data-error-for="webhook_url"' in response.content
    assert not ChatRobot.objects.exists()


@pytest.mark.django_db
def test_agents_read_but_cannot_add_or_remove_robots(client_for, support_team, agent):
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    client = client_for(agent)
    page = client.get(f"/requests/oncall/teams/{support_team.pk}/robots/")
    assert page.status_code == 200 and b"robot-form" not in page.content
    assert client.post(f"/requests/oncall/teams/{support_team.pk}/robots/", {"name": "x"}).status_code == 403
    assert (
        client.post(f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/delete/").status_code == 403
    )
    assert client.post(f"/requests/oncall/teams/{support_team.pk}/robots/test/").status_code == 403
    assert ChatRobot.objects.filter(pk=robot.pk).exists()


@pytest.mark.django_db
def test_managers_remove_a_robot(client_for, support_team, manager):
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    assert (
        client_for(manager)
        .post(f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/delete/")
        .status_code
        == 302
    )
    assert not ChatRobot.objects.exists()


@pytest.mark.django_db
def test_the_delivery_log_query_count_does_not_grow(
    client_for, support_team, agent, django_assert_max_num_queries
):
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    for i in range(8):
        delivery = ChatDelivery.objects.create(
            robot=robot, title=f"m{i}", text="x", status="failed", attempts=2
        )
        for n in (1, 2):
            ChatAttempt.objects.create(
                delivery=delivery,
                number=n,
                at=delivery.created_at,
                code="45009",
                message="api freq out of limit",
            )
    client = client_for(agent)
    with django_assert_max_num_queries(12):  # session, user, perms, team, robots, deliveries, attempts, …
        response = client.get(f"/requests/oncall/teams/{support_team.pk}/robots/")
    assert response.content.count(b"api freq out of limit") == 16


@pytest.mark.django_db(transaction=True)
def test_managers_send_a_test_message_to_the_robots(client_for, receiver, support_team, manager):
    receiver.replies = [REPLIES["wecom"]["success"]]
    _robot(support_team, "wecom", f"{receiver.url}/cgi-bin/webhook/send?key=k")
    response = client_for(manager).post(f"/requests/oncall/teams/{support_team.pk}/robots/test/")
    assert response.status_code == 302
    assert ChatDelivery.objects.get().status == "sent" and len(receiver.received) == 1


@pytest.mark.django_db
def test_a_robot_on_a_private_address_is_refused_and_its_sends_fail_at_once(
    client_for, support_team, manager, receiver, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ""  # the tests' loopback receivers are allowed elsewhere
    response = client_for(in_english(manager)).post(
        f"/requests/oncall/teams/{support_team.pk}/robots/",
        {"name": "x", "kind": "wecom", "webhook_url": "http://169.254.169.254/latest/meta-data/"},
    )
    assert response.status_code == 400 and b'data-error-for="webhook_url"' in response.content
    assert b"only to addresses on the internet" in response.content
    assert not ChatRobot.objects.exists()
    # a robot saved while its network was allowed is refused when it connects: failed at once, no retry
    _robot(support_team, "wecom", receiver.url)
    [queued] = chat_robots.chat_post(team=support_team, title="Breach", text="P1 is late")
    delivery = chat_robots.delivery_attempt(queued.pk)
    assert receiver.received == []
    assert delivery.status == ChatDelivery.Status.FAILED and delivery.attempts == 1
    assert delivery.last_error.startswith("refused: not sent: 127.0.0.1 reached 127.0.0.1")


@pytest.mark.django_db
def test_managers_change_a_robot_and_a_blank_secret_keeps_the_stored_one(client_for, support_team, manager):
    robot = _robot(support_team, "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=a", SECRET)
    client = client_for(in_english(manager))
    page = client.get(f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/edit/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Edit robot {robot.name}" in html and "access_token=a" in html
    assert SECRET not in html  # the secret is never shown back
    response = client.post(
        f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/edit/",
        {
            "name": "Ops DingTalk",
            "kind": "dingtalk",
            "webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=b",
            "secret": "",
            "keyword": "告警",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    robot.refresh_from_db()
    assert (robot.name, robot.keyword, robot.secret) == ("Ops DingTalk", "告警", SECRET)
    assert robot.webhook_url.endswith("access_token=b")
    assert ChatRobot.objects.count() == 1


@pytest.mark.django_db
def test_a_robot_changed_to_a_private_address_is_refused_and_kept(
    client_for, support_team, manager, settings
):
    settings.OUTBOUND_ALLOWED_NETWORKS = ""
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    response = client_for(in_english(manager)).post(
        f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/edit/",
        {"name": "x", "kind": "wecom", "webhook_url": "http://10.0.0.8/send"},
    )
    assert response.status_code == 400 and b'data-error-for="webhook_url"' in response.content
    robot.refresh_from_db()
    assert robot.webhook_url.startswith("https://qyapi.weixin.qq.com/")


@pytest.mark.django_db
def test_agents_cannot_change_a_robot_nor_anyone_one_of_another_team(
    client_for, support_team, agent, manager, make_user
):
    robot = _robot(support_team, "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k")
    url = f"/requests/oncall/teams/{support_team.pk}/robots/{robot.pk}/edit/"
    assert client_for(agent).get(url).status_code == 403
    assert (
        client_for(agent)
        .post(url, {"name": "x", "kind": "wecom", "webhook_url": "https://e.com/"})
        .status_code
        == 403
    )
    from accounts.models import Team

    other = Team.objects.create(name="Other team")
    assert (
        client_for(manager).get(f"/requests/oncall/teams/{other.pk}/robots/{robot.pk}/edit/").status_code
        == 404
    )
    robot.refresh_from_db()
    assert robot.name == "wecom robot"
