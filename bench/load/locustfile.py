"""Load scenario: requesters filing and reading requests, agents working the queue, managers opening
dashboards, and CSV imports in the background. Users are signed in beforehand (bench/load/prepare.py):
sessions for pages, API tokens for JSON.

Run it with bench/load/run.sh (starts gunicorn with production settings and a worker, seeds users,
runs locust headless with bounded users and time, prints per-endpoint figures).
"""

import io
import json
import os
import random
import time
from pathlib import Path

from locust import HttpUser, between, events, task

USERS = json.loads(Path(os.environ.get("LOAD_USERS_FILE", ".data/load-users.json")).read_text())
# Think time between two actions of one person, in seconds: someone reading a page or typing.
WAIT_MIN, WAIT_MAX = (float(x) for x in os.environ.get("LOAD_WAIT", "2,8").split(","))


class PortalUser(HttpUser):
    """A person already signed in (bench/load/prepare.py): a session cookie for pages, a token for the API."""

    abstract = True
    wait_time = between(WAIT_MIN, WAIT_MAX)
    kind = ""

    def on_start(self) -> None:
        account = random.choice(USERS["users"][self.kind])
        self.client.cookies.set(USERS["session_cookie"], account["session"])
        self.api_headers = {"Authorization": f"Token {account['token']}"}

    def api_get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.api_headers, name=name)

    def page_get(self, path: str, name: str) -> None:
        """A page counts only if it is the page itself, not the sign-in form it was redirected to."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.ok and "/accounts/login/" in response.url:
                response.failure("redirected to the sign-in page")


class Requester(PortalUser):
    weight = 6
    kind = "requester"

    @task(3)
    def my_requests_page(self) -> None:
        self.page_get("/requests/", "page: my requests")

    @task(2)
    def list_tickets_api(self) -> None:
        self.api_get("/api/v1/tickets/?page_size=25", "api: tickets list")

    @task(1)
    def file_request(self) -> None:
        body = {
            "title": f"Load test request {random.randint(1, 10**6)}",
            "description": "Coupon banner shows the wrong price on the H5 page.",
            "type": random.choice(["system_config", "data_support", "incident", "feature", "consultation"]),
            "urgency": random.choice(["urgent", "routine", "planned"]),
        }
        response = self.client.post(
            "/api/v1/tickets/", json=body, headers=self.api_headers, name="api: file request"
        )
        if response.status_code == 201:
            key = response.json()["key"]
            self.api_get(f"/api/v1/tickets/{key}/", "api: ticket detail")

    @task(1)
    def knowledge_base(self) -> None:
        self.api_get("/api/v1/kb/articles/?q=标签", "api: kb search")


class Agent(PortalUser):
    weight = 3
    kind = "agent"

    @task(4)
    def queue_page(self) -> None:
        self.page_get("/requests/queue/", "page: queue")

    @task(2)
    def queue_filtered(self) -> None:
        self.page_get("/requests/queue/?status=new&urgency=urgent", "page: queue filtered")

    @task(2)
    def queue_api(self) -> None:
        self.api_get("/api/v1/tickets/?status=new&page_size=50", "api: queue")

    @task(1)
    def customers(self) -> None:
        self.page_get("/customers/", "page: customers")


class Manager(PortalUser):
    weight = 1
    kind = "manager"

    @task(2)
    def dashboards(self) -> None:
        self.page_get("/dashboards/", "page: dashboards")

    @task(2)
    def support_figures(self) -> None:
        self.api_get("/api/v1/analytics/support/", "api: analytics support")

    @task(1)
    def marketing_figures(self) -> None:
        self.api_get("/api/v1/analytics/marketing/", "api: analytics marketing")

    @task(1)
    def import_events(self) -> None:
        # a background import: a small events file for demo customers
        lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
        for _ in range(200):
            lines.append(f"DEMO-{random.randint(1, 200):05d},page_view,{time.strftime('%Y-%m-%d')},,web")
        files = {"file": ("events.csv", io.BytesIO("\n".join(lines).encode()), "text/csv")}
        self.client.post(
            "/api/v1/events/import/", files=files, headers=self.api_headers, name="api: events import"
        )


REQUEST_LOG = os.environ.get("LOAD_REQUEST_LOG")
if REQUEST_LOG:
    _request_log = open(REQUEST_LOG, "w")  # noqa: SIM115 - open for the whole run

    @events.request.add_listener
    def _log_request(request_type, name, response_time, exception, **kwargs) -> None:
        """Every request with its time, for finding when the slow ones happen (LOAD_REQUEST_LOG=file)."""
        _request_log.write(f"{time.time():.3f},{name},{response_time:.1f},{int(exception is not None)}\n")


@events.quitting.add_listener
def _summary(environment, **kwargs) -> None:
    stats = environment.stats
    rows = []
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        rows.append(
            f"{entry.name:<32} n={entry.num_requests:<6} fail={entry.num_failures:<4} "
            f"p50={entry.get_response_time_percentile(0.5):.0f}ms p95={entry.get_response_time_percentile(0.95):.0f}ms "
            f"p99={entry.get_response_time_percentile(0.99):.0f}ms"
        )
    total = stats.total
    page_p95 = max(
        (e.get_response_time_percentile(0.95) for e in stats.entries.values() if e.name.startswith("page:")),
        default=0,
    )
    print("\n".join(rows))
    print(
        f"requests={total.num_requests} errors={total.num_failures} rps={total.total_rps:.1f} "
        f"p50_ms={total.get_response_time_percentile(0.5):.0f} p95_ms={total.get_response_time_percentile(0.95):.0f} "
        f"p99_ms={total.get_response_time_percentile(0.99):.0f} pages_p95_ms={page_p95:.0f}"
    )
