"""Schemathesis over every operation of /api/schema/, as a requester and as an agent: no server error, and
every answer is one the schema documents (status code, content type, headers, body), valid input and
hostile input (negative mode) alike. Hostile input must be refused (4xx), never accepted.

Bounded for CI: at most MAX_EXAMPLES generated cases per operation and role (plus the schema's explicit
examples), derandomized so a run is reproducible; no operation is skipped. Path parameters are mostly
pointed at real objects (a ticket, a campaign, a tag...), so the operations run their real logic instead
of answering 404 to every random key.
"""

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from django.test import override_settings
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.tokens import api_token_issue

MAX_EXAMPLES = 25
INTAKE_TOKEN = "fuzz-intake-secret"
ALERT_TOKEN = "fuzz-alert-secret"
TOO_LONG = re.compile(r"violates `maxLength` at \S*/properties/([^ /]+) ")


def negative_data_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis's negative_data_rejection, less one case: a string too long only by whitespace at its
    ends. DRF trims a text field before checking its length, so the API rightly takes it."""
    try:
        return negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData as failure:
        field = TOO_LONG.search(failure.message)
        value = case.body.get(field.group(1)) if field and isinstance(case.body, dict) else None
        if isinstance(value, str) and value != value.strip():
            return None
        raise


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_refused,
    missing_required_header,
]

config = SchemathesisConfig.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True},
        # The coverage phase enumerates the boundaries of every parameter (missing, empty, too long, wrong
        # type...): not bounded by max-examples, so CI leaves it out; `FUZZ_COVERAGE=1` adds it to a run.
        "phases": {
            "coverage": {"enabled": os.environ.get("FUZZ_COVERAGE") == "1"},
            "stateful": {"enabled": False},
        },
        # an edit without If-Match is 428 Precondition Required (RFC 6585), the right refusal
        "checks": {"missing_required_header": {"expected-statuses": [400, 401, 403, 406, 415, 422, 428]}},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=config)

# The objects of the current test, by path parameter (filled by the `objects` fixture).
KNOWN: dict[str, Any] = {}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Point three cases in four at real objects (the fourth keeps its random key, a 404), and give the IM
    intake its secret in three cases in four. Schemathesis re-checks the case afterwards, so a negative
    case made valid here is judged as the valid request it became. (A global hook: it acts only while
    this module's fixture has filled KNOWN.)"""
    if not KNOWN:
        return
    path = case.operation.path
    for name, value in list((case.path_parameters or {}).items()):
        known = KNOWN.get(f"{path}:{name}", KNOWN.get(name))
        if known is not None and _quarter(value) != 0:
            case.path_parameters[name] = known
    if path.endswith("/intake/im/") and case.headers is not None and _quarter(case.body) != 0:
        case.headers["X-Intake-Token"] = INTAKE_TOKEN


def _quarter(value: Any) -> int:
    return hashlib.sha256(repr(value).encode()).digest()[0] % 4


@pytest.fixture(autouse=True)
def _keep_test_connection():
    """Like Django's test client: the WSGI handler must not close the test's transaction-bound connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(scope="module")
def objects(django_db_setup, django_db_blocker) -> Iterator[dict[str, Any]]:
    """One of everything the API names in a path, visible to both roles, and the roles' tokens: made once
    for the module inside a transaction that is rolled back at its end (each test runs in a savepoint)."""
    from accounts.models import Team
    from accounts.services import user_create
    from analytics.models import ReportJob
    from campaigns.services import ab_test_create
    from crm_tags.services import tag_build_run, tag_publish
    from tests.campaigns.factories import campaign_make
    from tests.crm_tags import factories as crm
    from tests.knowledge_base.factories import make_published
    from tests.tickets.factories import make_ticket

    def person(username: str, role: str, team: str) -> Any:
        return user_create(username=username, role=role, team_name=team, password=f"pw-{username}-1")

    files = []
    with (
        django_db_blocker.unblock(),
        override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]),
        transaction.atomic(),
    ):
        Team.objects.get_or_create(name="MarTech support", defaults={"is_support": True})
        requester = person("fuzz_req", "requester", "E-commerce ops")
        agent = person("fuzz_agent", "agent", "MarTech support")
        manager = person("fuzz_boss", "manager", "MarTech support")
        campaign = campaign_make(owner=requester, code="fuzz")
        variants = [
            {"name": "A", "exposures": 100, "conversions": 5},
            {"name": "B", "exposures": 90, "conversions": 9},
        ]
        test = ab_test_create(campaign=campaign, by=requester, name="Subject", variants=variants)
        customer = crm.customer(external_id="FUZZ1")
        tag = crm.rule_tag("fuzz-tag", {"attr": "city", "op": "=", "value": "Shanghai"}, by=agent)
        build = tag_build_run(build=tag_publish(tag=tag, version_number=1, rollout_percent=50, by=agent))
        article = make_published(agent, manager, title="Fuzzing", body="Steps")
        ticket = make_ticket(requester)
        data: dict[str, Any] = {
            "key": ticket.key,
            "code": campaign.code,
            "test_id": test.pk,
            "external_id": customer.external_id,
            "slug": tag.slug,
            "build_id": build.pk,
        }
        for suffix in ("", "versions/", "publish/", "submit/"):
            data[f"/api/v1/kb/articles/{{id}}/{suffix}:id"] = article.pk
        for role, user in (("requester", requester), ("agent", agent)):
            job = ReportJob.objects.create(
                owner=user, kind="tickets", status="done", dedupe_key=f"fuzz-{role}"
            )
            job.file.save(f"fuzz-{role}.csv", ContentFile(b"key,title\r\nMT-1,x\r\n"), save=True)
            files.append(job.file.name)
            data[role] = api_token_issue(user=user).key
            data[f"{role}:report"] = job.pk
            data[f"{role}:spare_token"] = api_token_issue(user=user, name="spare").pk
        yield data
        transaction.set_rollback(True)
    for name in files:
        default_storage.delete(name)


@pytest.fixture
def known_objects(objects, role, settings) -> Iterator[dict[str, Any]]:
    """The objects the hook points path parameters at, for this test's role; the IM and alert intakes switched on."""
    settings.IM_INTAKE_TOKEN = INTAKE_TOKEN
    settings.ALERT_INTAKE_TOKEN = ALERT_TOKEN
    KNOWN.update(objects)
    KNOWN["/api/v1/reports/{id}/:id"] = KNOWN["/api/v1/reports/{id}/download/:id"] = objects[f"{role}:report"]
    KNOWN["token_id"] = objects[f"{role}:spare_token"]
    yield objects
    KNOWN.clear()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["requester", "agent"])
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_api_operations_never_fail_and_match_the_schema(case, role, known_objects):
    authorization = f"Token {known_objects[role]}"
    if case.operation.path.endswith("/intake/alerts/") and _quarter(case.body) != 0:
        # the alert intake takes its own bearer token: given in three cases in four
        authorization = f"Bearer {ALERT_TOKEN}"
    response = case.call(headers={"Authorization": authorization})
    case.validate_response(response, checks=CHECKS)
