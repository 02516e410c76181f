"""Settings read from the environment, as a deployer or a developer sets them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _setting(name: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "WEB_BIND")}
    result = subprocess.run(
        [sys.executable, "-c", f"from django.conf import settings; print(settings.{name})"],
        cwd=ROOT,
        env={**environment, **env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_secret_key_fallbacks_are_read_from_the_environment():
    assert _setting("SECRET_KEY_FALLBACKS", DJANGO_SECRET_KEY_FALLBACKS="old-1,old-2") == "['old-1', 'old-2']"


@pytest.mark.parametrize(
    "bind, site",
    [
        (None, "http://127.0.0.1:8000"),
        ("127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("hub.internal:8080", "http://hub.internal:8080"),
    ],
)
def test_links_follow_where_the_web_server_listens_unless_site_url_is_set(bind, site):
    assert _setting("SITE_URL", **({"WEB_BIND": bind} if bind else {})) == site
    assert (
        _setting("SITE_URL", WEB_BIND="127.0.0.1:8123", SITE_URL="https://hub.example")
        == "https://hub.example"
    )
