"""Load scenario: requesters filing and reading requests, agents working the queue, managers opening
dashboards, and CSV imports in the background. Users log in with API tokens for JSON and sessions for pages.

Run it with bench/load/run.sh (starts gunicorn with production settings and a worker, seeds users,
runs locust headless with bounded users and time, prints per-endpoint figures).
"""

import io
import random
import time

from locust import HttpUser, between, events, task

PASSWORD = "load-test-pw-1"
REQUESTERS = [f"load_req_{i}" for i in range(20)]
AGENTS = [f"load_agent_{i}" for i in range(5)]
MANAGERS = [f"load_mgr_{i}" for i in range(2)]


class PortalUser(HttpUser):
    abstract = True
    wait_time = between(0.5, 2.0)
    usernames: list[str] = []

    def on_start(self) -> None:
        username = random.choice(self.usernames)
        page = self.client.get("/accounts/login/", name="login page")
        token = page.cookies.get("csrftoken") or self.client.cookies.get("csrftoken", "")
        self.client.post(
            "/accounts/login/",
            {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": self.host + "/accounts/login/"},
            name="login",
        )
        response = self.client.post(
            "/api/v1/auth/token/", json={"username": username, "password": PASSWORD}, name="api token"
        )
        self.api_headers = (
            {"Authorization": f"Token {response.json().get('token', '')}"} if response.ok else {}
        )

    def api_get(self, path: str, name: str) -> None:
        self.client.get(path, headers=self.api_headers, name=name)


class Requester(PortalUser):
    weight = 6
    usernames = REQUESTERS

    @task(3)
    def my_requests_page(self) -> None:
        self.client.get("/requests/", name="page: my requests")

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
    usernames = AGENTS

    @task(4)
    def queue_page(self) -> None:
        self.client.get("/requests/queue/", name="page: queue")

    @task(2)
    def queue_filtered(self) -> None:
        self.client.get("/requests/queue/?status=new&urgency=urgent", name="page: queue filtered")

    @task(2)
    def queue_api(self) -> None:
        self.api_get("/api/v1/tickets/?status=new&page_size=50", "api: queue")

    @task(1)
    def customers(self) -> None:
        self.client.get("/customers/", name="page: customers")


class Manager(PortalUser):
    weight = 1
    usernames = MANAGERS

    @task(2)
    def dashboards(self) -> None:
        self.client.get("/dashboards/", name="page: dashboards")

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
            lines.append(f"DEMO-{random.randint(0, 199):05d},page_view,{time.strftime('%Y-%m-%d')},,web")
        files = {"file": ("events.csv", io.BytesIO("\n".join(lines).encode()), "text/csv")}
        self.client.post(
            "/api/v1/events/import/", files=files, headers=self.api_headers, name="api: events import"
        )


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
