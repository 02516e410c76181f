"""Load-test users, already signed in: writes their session cookies and API tokens to a JSON file.

A sign-in costs ~1.3 s of CPU by design (PBKDF2, 1,000,000 iterations), so 100 users signing in at
once would measure nothing but password hashing. The scenario is people already at work; sign-ins
happen before the measured run. Usage: python bench/load/prepare.py OUT.json
"""

import json
import os
import sys
from importlib import import_module
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import user_create  # noqa: E402
from accounts.tokens import api_token_issue  # noqa: E402

PASSWORD = "load-test-pw-1"
GROUPS = [
    ("requester", "load_req_", "requester", "E-commerce ops", 20),
    ("agent", "load_agent_", "agent", "MarTech support", 5),
    ("manager", "load_mgr_", "manager", "MarTech support", 2),
]


def signed_in_session(user: User) -> str:
    """A session exactly as django.contrib.auth.login leaves it."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def main(out: str) -> None:
    users: dict[str, list[dict[str, str]]] = {}
    for kind, prefix, role, team, count in GROUPS:
        for i in range(count):
            username = f"{prefix}{i}"
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(username=username, role=role, team_name=team, password=PASSWORD)
            token = api_token_issue(user=user, name="load test")
            users.setdefault(kind, []).append(
                {"username": username, "session": signed_in_session(user), "token": token.key}
            )
    Path(out).write_text(json.dumps({"session_cookie": settings.SESSION_COOKIE_NAME, "users": users}))


if __name__ == "__main__":
    main(sys.argv[1])
