"""A real OpenID Connect provider for the single sign-on tests: tests/oidc_provider/provider.mjs (panva's
oidc-provider) run with Node on a loopback port the system picks, and a requests-based "browser" that
walks its sign-in and consent forms through the authorization-code flow."""

import fcntl
import json
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
CLIENT_ID = "martech-hub-tests"
CLIENT_SECRET = "client-secret-for-tests-" + "x" * 24
START_TIMEOUT = 30.0


def node_modules_ensure() -> None:
    """`npm ci` in tests/oidc_provider when its node_modules is missing (a fresh clone); one run at a time."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: the single sign-on tests need Node and npm (apt-get install nodejs npm)")
    with open(Path(tempfile.gettempdir()) / "martech-oidc-provider-npm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PROVIDER_DIR, check=True, timeout=300)


@dataclass
class RunningProvider:
    issuer: str
    accounts_file: Path
    accounts: dict = field(default_factory=dict)

    def account_set(self, login: str, *, password: str, claims: dict, amr: list[str] | None = None) -> None:
        """Add or change a test account; the provider reads the file again at every look-up."""
        self.accounts[login] = {"password": password, "claims": claims, "amr": amr or ["pwd"]}
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.accounts))
        tmp.replace(self.accounts_file)


def _read_port(proc: subprocess.Popen, deadline: float) -> int:
    """The port from the provider's `listening <port>` line (waiting on its stdout, not sleeping)."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
                if not line:
                    break  # the process ended
                match = re.match(rb"listening (\d+)", line)
                if match:
                    return int(match.group(1))
    finally:
        selector.close()
    raise RuntimeError("the OpenID provider did not start")


def _wait_for_discovery(issuer: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        try:
            proc.wait(timeout=0.05)  # the pause between tries, which also notices a provider that died
        except subprocess.TimeoutExpired:
            continue
        break
    raise RuntimeError("the OpenID provider's discovery document did not answer")


@contextmanager
def provider_running(work_dir: Path, redirect_uris: list[str]) -> Iterator[RunningProvider]:
    """Start the provider for `redirect_uris` with its files in `work_dir`; stopped on the way out."""
    node = shutil.which("node") or "/usr/bin/node"
    node_modules_ensure()
    accounts_file = work_dir / "accounts.json"
    accounts_file.write_text("{}")
    config_file = work_dir / "config.json"
    config_file.write_text(
        json.dumps(
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "accounts_file": str(accounts_file),
            }
        )
    )
    log_file = open(work_dir / "provider.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [node, str(PROVIDER_DIR / "provider.mjs"), str(config_file)],
        cwd=work_dir,
        stdout=subprocess.PIPE,
        stderr=log_file,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        try:
            issuer = f"http://127.0.0.1:{_read_port(proc, deadline)}"
            _wait_for_discovery(issuer, proc, deadline)
        except RuntimeError as exc:
            log_file.flush()
            raise RuntimeError(f"{exc}: {(work_dir / 'provider.log').read_text()[-2000:]}") from exc
        yield RunningProvider(issuer=issuer, accounts_file=accounts_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log_file.close()


# The browser ---------------------------------------------------------------------------------------


def _form_action(html: str, form_id: str) -> str | None:
    match = re.search(rf'<form id="{form_id}" method="post" action="([^"]+)"', html)
    return match.group(1) if match else None


def provider_sign_in(
    browser: requests.Session,
    start: requests.Response,
    *,
    login: str,
    password: str,
    stop_at: str | None = None,
) -> requests.Response:
    """From the provider's sign-in page: post the login form, then the consent form when it is asked, and
    follow the redirects back to the portal (with `stop_at`, stop at the redirect to that path instead)."""
    action = _form_action(start.text, "login")
    assert action, f"no sign-in form at {start.url}: {start.text[:300]}"
    response = browser.post(
        urljoin(start.url, action),
        data={"login": login, "password": password},
        allow_redirects=stop_at is None,
    )
    response = _follow(browser, response, stop_at)
    action = _form_action(response.text, "consent")
    if action:
        response = browser.post(urljoin(response.url, action), allow_redirects=stop_at is None)
        response = _follow(browser, response, stop_at)
    return response


def _follow(browser: requests.Session, response: requests.Response, stop_at: str | None) -> requests.Response:
    """Follow redirects by hand until one leads to `stop_at` (None: requests followed them already)."""
    while stop_at and response.is_redirect and stop_at not in response.headers["Location"]:
        response = browser.get(urljoin(response.url, response.headers["Location"]), allow_redirects=False)
    return response
