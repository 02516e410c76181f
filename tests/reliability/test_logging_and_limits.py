import json
import logging

import pytest
from rest_framework.throttling import UserRateThrottle

from config.logging import JsonFormatter, mask_pii


def test_log_lines_mask_emails_and_phone_numbers():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "import for %s / %s", ("zhang.wei@example.com", "13812345678"), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "import for z***@example.com / 138****5678"


def test_mask_pii_leaves_other_numbers_alone():
    assert mask_pii("order 202611210001 amount 236.50") == "order 202611210001 amount 236.50"


@pytest.mark.django_db
def test_api_rate_limit_answers_429_in_the_error_shape(api_for, requester, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    client = api_for(requester)
    statuses = [client.get("/api/v1/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    body = client.get("/api/v1/me/").json()
    assert body["errors"][0]["code"] == "throttled"
