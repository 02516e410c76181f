"""MarTech Hub settings: one module, every deployment-specific value read from the environment."""

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
from csp.constants import NONCE, NONE, SELF
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# The test suite runs in parallel processes (pytest-xdist's gw0, gw1, ...): each takes the Redis database
# after REDIS_URL's by its number (every test empties its cache first) and a media folder of its own; its
# test database gets a suffix from pytest-django. Written back to the environment, once, so the servers and
# workers a test starts inherit the same.
TEST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if TEST_WORKER[:2] == "gw" and TEST_WORKER[2:].isdigit() and not os.environ.get("MARTECH_TEST_WORKER_SET"):
    _redis = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    _redis_db = int(_redis.path.strip("/") or 0) + int(TEST_WORKER[2:])
    os.environ["REDIS_URL"] = urlunsplit(_redis._replace(path=f"/{_redis_db}"))
    os.environ["MEDIA_ROOT"] = str(
        Path(os.environ.get("MEDIA_ROOT", BASE_DIR / ".data" / "media")) / TEST_WORKER
    )
    os.environ["MARTECH_TEST_WORKER_SET"] = "1"

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-0f1b7c2e9a4d4c8b9e6f3a2d1c0b9a8f7e6d5c4b3a2")
# Rotation: the previous keys, comma-separated; values they signed (sessions, links) stay valid until removed.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "bootstrap",
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "config.apps.SharedConfig",
    "accounts",
    "tickets",
    "crm_tags",
    "campaigns",
    "analytics",
    "knowledge_base",
    "privacy",
    "search",
    "journeys",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestIdMiddleware",
    "config.inputs.InputGuardMiddleware",
    "privacy.middleware.NoStoreMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.user_sessions.SessionActivityMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.two_factor.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "accounts.login_throttle.LoginThrottleMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# Database and cache -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/martech")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# A backend whose client died mid-query (a worker SIGKILLed or OOM-killed during a tag build) would run
# on holding its transaction and locks, the build's advisory lock too, until its query ends; one whose
# client machine vanished would wait on the socket for hours. So Postgres polls the client socket while
# a query runs and probes idle connections: such a backend rolls back and exits within seconds.
DATABASES["default"]["OPTIONS"]["options"] = " ".join(
    filter(
        None,
        [
            DATABASES["default"]["OPTIONS"].get("options", ""),
            "-c client_connection_check_interval=" + env("DB_CLIENT_CHECK_INTERVAL", default="2s"),
            "-c tcp_keepalives_idle=60 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=6",
        ],
    )
)
# One test database per test run (several runs may share a machine); a run drops its own at the end.
DATABASES["default"]["TEST"] = {
    "NAME": env("TEST_DATABASE_NAME", default=f"test_{DATABASES['default']['NAME']}_{os.getpid()}")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Replica reads (config/db_router.py, docs/scaling.md): with DATABASE_REPLICA_URL set, dashboards, report
# jobs and exports read from this streaming standby inside `replica_reads()`; one more than
# REPLICA_MAX_LAG_SECONDS behind, or down, makes them read the primary (and say so).
if env("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"].setdefault("OPTIONS", {})
    # a replica that does not answer costs a page at most this long before it reads the primary
    DATABASES["replica"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("REPLICA_CONNECT_TIMEOUT", default=2)
    )
    # a test run on a machine with a configured replica reads its own test database through this alias
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["config.db_router.ReplicaRouter"]
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=30.0)
# after a failed connection the replica is tried again only this many seconds later (the primary meanwhile)
REPLICA_RETRY_SECONDS = env.float("REPLICA_RETRY_SECONDS", default=10.0)
# Connection pooling (docs/scaling.md): DATABASE_POOLER=pgbouncer when DATABASE_URL points at PgBouncer in
# transaction mode. A server connection then serves a client for one transaction only: no server-side
# cursors (a cursor outlives the transaction that declared it), no prepared statements, and no startup
# `options` (PgBouncer refuses them): set those on the role instead (ALTER ROLE ... SET ..., see the docs).
DATABASE_POOLER = env("DATABASE_POOLER", default="")
if DATABASE_POOLER == "pgbouncer":
    for _alias in DATABASES:
        DATABASES[_alias]["DISABLE_SERVER_SIDE_CURSORS"] = True
        # (prepared statements: Django's psycopg backend already sets prepare_threshold=None)
        DATABASES[_alias].get("OPTIONS", {}).pop("options", None)

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "config.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="martech"),
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}

# Accounts and authentication ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "accounts.login_throttle.LoginThrottleBackend",
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.CachedPermissionsBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_HANDLER = env("AXES_HANDLER", default="axes.handlers.database.AxesDatabaseHandler")
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_LOCKOUT_CALLABLE = "accounts.login_throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.login_throttle.client_address"
# Reverse proxies in front of gunicorn that append to X-Forwarded-For (the client address the sign-in
# throttles count is the entry this many from the end); 0 trusts no header and counts the peer.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Failed sign-ins per client address (any usernames) per window before every sign-in from it is
# answered 429 without hashing a password (accounts/login_throttle.py; counted in Redis).
LOGIN_THROTTLE_IP_FAILURES = env.int("LOGIN_THROTTLE_IP_FAILURES", default=30)
LOGIN_THROTTLE_WINDOW_SECONDS = env.int("LOGIN_THROTTLE_WINDOW_SECONDS", default=900)
# Hours an API token lives (accounts/tokens.py); only its hash is stored.
API_TOKEN_TTL_HOURS = env.int("API_TOKEN_TTL_HOURS", default=90 * 24)
# Two-factor sign-in (accounts/two_factor.py, django-otp). True makes it compulsory for managers and
# admins whatever the manager's switch on the security page says.
TWO_FACTOR_REQUIRED_FOR_STAFF = env.bool("TWO_FACTOR_REQUIRED_FOR_STAFF", default=False)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="MarTech Hub")
# After n wrong codes in a row a device waits 2^(n-1) seconds before it checks another.
OTP_TOTP_THROTTLE_FACTOR = 1
# Web sessions (accounts/user_sessions.py): signed out after this long without a request, and in any
# case this long after signing in. Sessions live in the database (Django's default engine).
SESSION_IDLE_TIMEOUT_SECONDS = env.int("SESSION_IDLE_TIMEOUT_SECONDS", default=8 * 3600)
SESSION_COOKIE_AGE = env.int("SESSION_MAX_AGE_SECONDS", default=14 * 24 * 3600)
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Single sign-on with OpenID Connect (accounts/oidc.py on mozilla-django-oidc; docs/security.md). Off
# unless OIDC_ENABLED; the endpoints come from the issuer's discovery document. Password sign-in stays.
OIDC_ENABLED = env.bool("OIDC_ENABLED", default=False)
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", default="")  # "Sign in with <name>"; empty: "single sign-on"
OIDC_ISSUER = env("OIDC_ISSUER", default="")  # discovery: <issuer>/.well-known/openid-configuration
OIDC_RP_CLIENT_ID = env("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", default="")
OIDC_RP_SCOPES = env("OIDC_SCOPES", default="openid email profile")
OIDC_RP_SIGN_ALGO = env("OIDC_SIGN_ALGO", default="RS256")
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=True)
OIDC_USE_PKCE = True
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT_SECONDS", default=10)
OIDC_AUTHENTICATION_CALLBACK_URL = "accounts:oidc_callback"
# The claims that carry a person's role and team (a string or a list of strings, e.g. groups), and JSON
# maps from their values to the portal's roles (requester, agent, manager, admin) and to team names. A
# person whose role claim maps to no role is refused; with OIDC_TEAM_CLAIM empty teams are kept as set here.
OIDC_ROLE_CLAIM = env("OIDC_ROLE_CLAIM", default="role")
OIDC_ROLE_MAP = env.json("OIDC_ROLE_MAP", default={})
OIDC_TEAM_CLAIM = env("OIDC_TEAM_CLAIM", default="")
OIDC_TEAM_MAP = env.json("OIDC_TEAM_MAP", default={})
# Create a person at their first sign-on (else only people already here, matched by verified e-mail).
OIDC_CREATE_USERS = env.bool("OIDC_CREATE_USERS", default=False)
# Two-factor: a sign-on whose ID token's `amr` names one of these methods counts as two-factor here; with
# OIDC_TRUST_IDP_MFA every sign-on does (the provider enforces it). Otherwise the local code is asked.
OIDC_MFA_AMR_VALUES = env.list("OIDC_MFA_AMR_VALUES", default=["mfa", "otp", "hwk", "swk", "sc"])
OIDC_TRUST_IDP_MFA = env.bool("OIDC_TRUST_IDP_MFA", default=False)
AUTHENTICATION_BACKENDS.append("accounts.oidc.OidcBackend")

# Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
LANGUAGE_COOKIE_NAME = "martech_language"

# Static and uploaded files ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / ".data" / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfinders.PackagedFilesFinder",
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "config.storage.StaticFilesStorage",
        )
    },
}
# Compressed static files, kept by content hash across `collectstatic` runs (config/storage.py).
STATIC_COMPRESS_CACHE = env.path(
    "STATIC_COMPRESS_CACHE", default=BASE_DIR / ".data" / "static-compress-cache"
)
# Files served at the site's root (/favicon.ico), whatever the debug mode.
WHITENOISE_ROOT = BASE_DIR / "public"
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".data" / "media")
# audience activation's file destinations write only below this folder (docs/journeys.md)
ACTIVATION_FILE_ROOT = env.path("ACTIVATION_FILE_ROOT", default=BASE_DIR / ".data" / "activation")
# ... or, for a folder `s3://bucket/prefix`, only into these buckets of an S3-compatible store
ACTIVATION_S3_BUCKETS = env.list("ACTIVATION_S3_BUCKETS", default=[])
ACTIVATION_S3_ENDPOINT_URL = env("ACTIVATION_S3_ENDPOINT_URL", default="")
ACTIVATION_S3_REGION = env("ACTIVATION_S3_REGION", default="us-east-1")
ACTIVATION_S3_ACCESS_KEY_ID = env("ACTIVATION_S3_ACCESS_KEY_ID", default="")
ACTIVATION_S3_SECRET_ACCESS_KEY = env("ACTIVATION_S3_SECRET_ACCESS_KEY", default="")
MEDIA_URL = "/media/"
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
# Small: an upload beyond it streams to a temporary file (CSV imports run to hundreds of MB).
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("FILE_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=512 * 1024 * 1024)

# Security -------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        # plotly.js and Bootstrap set element styles at run time; scripts stay nonce-only.
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}

# REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    # JSON bodies only (uploads name config.inputs.MultiPartParser themselves): form encoding cannot say
    # null, a list or an object, so it would make the same request mean two things. config/inputs.py:
    # size and depth limits, no NUL or unpaired surrogate in any text of a body.
    "DEFAULT_PARSER_CLASSES": ["config.inputs.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.StandardPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("API_THROTTLE_ANON", default="60/min"),
        "user": env("API_THROTTLE_USER", default="6000/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# JSON bodies of the API (config/inputs.py): larger ones answer 413, deeper ones 400, both before parsing.
API_JSON_MAX_BYTES = env.int("API_JSON_MAX_BYTES", default=2 * 1024 * 1024)
API_JSON_MAX_DEPTH = env.int("API_JSON_MAX_DEPTH", default=64)
SPECTACULAR_SETTINGS = {
    "TITLE": "MarTech Hub API",
    "DESCRIPTION": "Requests, CRM tags, campaigns, analytics and the knowledge base.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.Campaign.Status",
        "TicketStatusEnum": "tickets.models.Ticket.Status",
        "AlertStatusEnum": "tickets.intake_alerts.ALERT_STATUSES",
        "TicketEventKindEnum": "tickets.models.TicketEvent.Kind",
        "ReportKindEnum": "analytics.models.ReportKind",
        "ReportStatusEnum": "analytics.models.ReportStatus",
        "ReportFormatEnum": "analytics.models.ReportFormat",
        "ConsentStateEnum": "privacy.models.ConsentState",
        "PrivacyRequestKindEnum": "privacy.models.PrivacyRequest.Kind",
        "PrivacyRequestStatusEnum": "privacy.models.PrivacyRequest.Status",
        "DestinationKindEnum": "journeys.models.Destination.Kind",
        "SyncStatusEnum": "journeys.activation_tables.SyncRun.Status",
        "SyncModeEnum": "journeys.activation_tables.SyncMode",
        "SyncOriginEnum": "journeys.activation_tables.SyncRun.Origin",
        "TypeEnum": "tickets.models.Ticket.Type",  # also a request type's default (tickets.request_types_api)
        "UrgencyEnum": "tickets.models.Ticket.Urgency",
    },
}

# Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=660)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
# A request never hangs on a dead broker: a couple of quick retries, then the outbox keeps the message.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_SEND_TASK_EVENTS = True
# Queues by kind of work (docs/scaling.md), one worker per group (Procfile, docker-compose.yml), so a long
# tag rebuild or report never delays a notification. Every task is named here: tests/scaling/test_queues.py
# fails for a task without a route, so a new one cannot land on a queue by accident.
CELERY_TASK_DEFAULT_QUEUE = "default"
TASK_QUEUE_NAMES = ["default", "tags", "reports", "journeys", "email"]
TASK_QUEUE_TASKS = {
    # rule builds, imports and whole-base recomputes: minutes of database work each
    "tags": [
        "crm_tags.tasks.run_tag_build",
        "crm_tags.tasks.rebuild_all_tags",
        "crm_tags.tasks.scheduled_rebuilds",
        "crm_tags.tasks.fail_orphaned_builds",
        "crm_tags.tasks.sync_event_ranks",
        "crm_tags.tasks.validate_constraint",
        "crm_tags.tasks.run_import_job",
        "crm_tags.tasks.fail_stale_import_jobs",
        "crm_tags.tasks.recompute_customer_values",
        "crm_tags.tasks.recompute_lead_scores",
        "crm_tags.tasks.refresh_after_import",
        "crm_tags.tasks.maintain_event_partitions",
        "crm_tags.tasks.run_tag_build_part",
        "privacy.tasks.apply_retention",
    ],
    # report files, exports and the dashboards' aggregates (these read the replica when there is one)
    "reports": [
        "analytics.tasks.run_report_job",
        "analytics.tasks.fail_stale_report_jobs",
        "analytics.tasks.send_scheduled_reports",
        "analytics.tasks.compact_rollups",
        "analytics.tasks.refresh_order_months",
        "privacy.tasks.run_export",
    ],
    "journeys": [
        "journeys.tasks.tick",
        "journeys.tasks.tag_build_done",
        "journeys.tasks.events_arrived",
        "journeys.tasks.send_deliveries",
        "journeys.tasks.dry_run",
        "journeys.tasks.activation_after_build",
        "journeys.tasks.activation_schedules",
        "journeys.tasks.activation_sync",
    ],
    # messages in and out: notification e-mails, chat posts, the inbound mailbox
    "email": [
        "accounts.tasks.send_notification_emails",
        "accounts.tasks.post_chat_message",
        "tickets.tasks.deliver_chat",
        "tickets.tasks.poll_inbound_imap",
        "tickets.tasks.send_inbound_refusal",
    ],
    # short periodic checks and everything a person waits on that is none of the above
    "default": [
        "accounts.tasks.worker_heartbeat",
        "accounts.tasks.flush_outbox",
        "accounts.tasks.purge_sessions",
        "accounts.tasks.audit_chain_anchor",
        "campaigns.tasks.follow_dates",
        "knowledge_base.tasks.flag_stale_articles",
        "tickets.tasks.sla_scan",
        "tickets.tasks.auto_close_resolved",
        "tickets.tasks.milestone_reminders",
        "privacy.tasks.run_erasure",
    ],
}
CELERY_TASK_ROUTES = {task: {"queue": queue} for queue, tasks in TASK_QUEUE_TASKS.items() for task in tasks}
# Every periodic job lives here, in code; apps add theirs to this one table.
CELERY_BEAT_SCHEDULE = {
    "tickets-sla-scan": {"task": "tickets.tasks.sla_scan", "schedule": 60.0},
    "tickets-auto-close": {"task": "tickets.tasks.auto_close_resolved", "schedule": 3600.0},
    "tickets-milestone-reminders": {"task": "tickets.tasks.milestone_reminders", "schedule": 3600.0},
    "worker-heartbeat": {"task": "accounts.tasks.worker_heartbeat", "schedule": 30.0},
    "outbox-flush": {"task": "accounts.tasks.flush_outbox", "schedule": 15.0},
    "crm-tags-fail-orphaned-builds": {"task": "crm_tags.tasks.fail_orphaned_builds", "schedule": 60.0},
    "crm-tags-fail-stale-imports": {"task": "crm_tags.tasks.fail_stale_import_jobs", "schedule": 60.0},
    "kb-stale-articles": {"task": "knowledge_base.tasks.flag_stale_articles", "schedule": 86400.0},
    "campaigns-follow-dates": {"task": "campaigns.tasks.follow_dates", "schedule": 900.0},
    "analytics-send-scheduled-reports": {
        "task": "analytics.tasks.send_scheduled_reports",
        "schedule": 3600.0,
    },
    # with REPORT_JOB_STALE_SECONDS (30 s): a dead report job is failed within 45 s of its last heartbeat
    "analytics-fail-stale-report-jobs": {"task": "analytics.tasks.fail_stale_report_jobs", "schedule": 15.0},
    "analytics-compact-rollups": {"task": "analytics.tasks.compact_rollups", "schedule": 600.0},
    "analytics-order-months": {"task": "analytics.tasks.refresh_order_months", "schedule": 300.0},
    "analytics-order-months-full": {
        "task": "analytics.tasks.refresh_order_months",
        "schedule": 3600.0,
        "kwargs": {"full": True},
    },
    "crm-tags-scheduled-rebuilds": {"task": "crm_tags.tasks.scheduled_rebuilds", "schedule": 3600.0},
    # events partitioned by month (crm_tags/partitions.py): the months ahead made, stray rows moved
    "crm-tags-event-partitions": {"task": "crm_tags.tasks.maintain_event_partitions", "schedule": 21600.0},
    "privacy-retention": {"task": "privacy.tasks.apply_retention", "schedule": 86400.0},
    "accounts-purge-sessions": {"task": "accounts.tasks.purge_sessions", "schedule": 3600.0},
    "accounts-audit-anchor": {"task": "accounts.tasks.audit_chain_anchor", "schedule": 3600.0},
    # journeys (docs/journeys.md): admit from new tag builds and events, run due steps, send deliveries
    "journeys-tick": {"task": "journeys.tasks.tick", "schedule": 5.0},
    # audience activation: hourly and daily audience syncs that are due
    "journeys-activation-schedules": {"task": "journeys.tasks.activation_schedules", "schedule": 60.0},
    "crm-tags-recompute-customer-values": {
        "task": "crm_tags.tasks.recompute_customer_values",
        "schedule": 86400.0,
    },
}

# Customer value (crm_tags/value): the event type that is an order, and the time unit of the BG/NBD fit.
CRM_ORDER_EVENT_TYPE = env("CRM_ORDER_EVENT_TYPE", default="order")
CRM_VALUE_TIME_UNIT = env("CRM_VALUE_TIME_UNIT", default="weeks")

# Personal data (docs/privacy.md) -------------------------------------------------------------------
# Whether a customer whose consent for a channel purpose is unknown is included in that channel's
# exports and audiences ("include"), or only those who granted it ("exclude", the default).
CONSENT_DEFAULT_UNKNOWN = env("CONSENT_DEFAULT_UNKNOWN", default="exclude")
# Days a person's request (export, erase) may take before it is overdue (PIPL: promptly).
PRIVACY_REQUEST_DUE_DAYS = env.int("PRIVACY_REQUEST_DUE_DAYS", default=15)
# Retention per data kind, in days (0 keeps forever); a daily task deletes or anonymises what is older.
RETENTION_DAYS = {
    "events": env.int("RETENTION_EVENTS_DAYS", default=1095),
    "touchpoints": env.int("RETENTION_TOUCHPOINTS_DAYS", default=730),
    "report_files": env.int("RETENTION_REPORT_FILES_DAYS", default=30),
    "access_log": env.int("RETENTION_ACCESS_LOG_DAYS", default=365),
    "privacy_files": env.int("RETENTION_PRIVACY_FILES_DAYS", default=30),
}
RETENTION_BATCH = env.int("RETENTION_BATCH", default=10_000)

# Tag builds over at least this many customers run as one task per customer-id range, TAG_FANOUT_PARTS of
# them, across the `tags` workers (crm_tags/fanout.py); smaller ones stay one statement.
TAG_FANOUT_MIN_CUSTOMERS = env.int("TAG_FANOUT_MIN_CUSTOMERS", default=2_000_000)
TAG_FANOUT_PARTS = env.int("TAG_FANOUT_PARTS", default=4)

# Report jobs (analytics) -----------------------------------------------------------------------------
# Plan milestones: their assignee is reminded this many days before each due date (tickets.milestones).
MILESTONE_REMINDER_DAYS = env.int("MILESTONE_REMINDER_DAYS", default=2)

# A running job's worker refreshes its heartbeat every REPORT_JOB_HEARTBEAT_SECONDS (from a thread of
# its own, whatever the job is busy with); one silent for REPORT_JOB_STALE_SECONDS is dead: the sweep
# (beat, every 15 s) or the owner's next request for the same report marks it failed.
REPORT_JOB_HEARTBEAT_SECONDS = env.int("REPORT_JOB_HEARTBEAT_SECONDS", default=10)
REPORT_JOB_STALE_SECONDS = env.int("REPORT_JOB_STALE_SECONDS", default=30)
# Report jobs one person may have queued or running at once; beyond it a request is answered 429.
REPORT_JOBS_PER_USER = env.int("REPORT_JOBS_PER_USER", default=3)
# Where running jobs write their temporary files (one directory per job, removed on every way out;
# a killed worker's is removed by the sweep). Holds personal data while a report runs: keep it private.
REPORT_WORK_DIR = env("REPORT_WORK_DIR", default=os.path.join(tempfile.gettempdir(), "martech-reports"))

# E-mail and notifications ----------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="MarTech Hub <martech-hub@localhost>")
CHAT_WEBHOOK_URL = env("CHAT_WEBHOOK_URL", default="")
# Addresses people type in (journey webhooks, team chat robots) reach only globally routable addresses,
# plus these networks (comma-separated, e.g. "10.20.0.0/16" for a receiver on the office network):
# config/outbound.py.
OUTBOUND_ALLOWED_NETWORKS = env("OUTBOUND_ALLOWED_NETWORKS", default="")
IM_INTAKE_TOKEN = env("IM_INTAKE_TOKEN", default="")
# Monitoring alerts (tickets/intake_alerts.py): the bearer token of POST /api/v1/intake/alerts/ (unset:
# the intake answers 503) and the name of the team its incident tickets go to.
ALERT_INTAKE_TOKEN = env("ALERT_INTAKE_TOKEN", default="")
ALERT_INTAKE_TEAM = env("ALERT_INTAKE_TEAM", default="MarTech support")
# E-mail intake (docs/tickets.md, "E-mail intake"): `manage.py inbound_email` (an MTA pipe) and IMAP polling.
# Unknown senders (no active account with that address): "reject" (a polite automatic reply) or "triage"
# (a ticket for INBOUND_TRIAGE_TEAM, which also takes mail from people without a team).
INBOUND_UNKNOWN_SENDER = env("INBOUND_UNKNOWN_SENDER", default="reject")
if INBOUND_UNKNOWN_SENDER not in ("reject", "triage"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("INBOUND_UNKNOWN_SENDER must be 'reject' or 'triage'")
INBOUND_TRIAGE_TEAM = env("INBOUND_TRIAGE_TEAM", default="MarTech support")
# Addresses that are this system's own besides DEFAULT_FROM_EMAIL (mail from them is never handled).
INBOUND_EMAIL_OWN_ADDRESSES = env.list("INBOUND_EMAIL_OWN_ADDRESSES", default=[])
# The domain of the Message-IDs of the mails this system sends (replies are threaded by them).
EMAIL_MESSAGE_ID_DOMAIN = env(
    "EMAIL_MESSAGE_ID_DOMAIN", default=DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "localhost"
)
# imaps://user:password@host:993/INBOX (user and password %-encoded); empty: no polling.
INBOUND_IMAP_URL = env("INBOUND_IMAP_URL", default="")
INBOUND_IMAP_POLL_SECONDS = env.float("INBOUND_IMAP_POLL_SECONDS", default=60.0)
INBOUND_IMAP_BATCH = env.int("INBOUND_IMAP_BATCH", default=100)
INBOUND_IMAP_TIMEOUT_SECONDS = env.int("INBOUND_IMAP_TIMEOUT_SECONDS", default=30)
# A folder to move handled messages to; empty: they stay in the mailbox, marked read.
INBOUND_IMAP_MOVE_TO = env("INBOUND_IMAP_MOVE_TO", default="")
if INBOUND_IMAP_URL:
    CELERY_BEAT_SCHEDULE["tickets-inbound-imap"] = {
        "task": "tickets.tasks.poll_inbound_imap",
        "schedule": INBOUND_IMAP_POLL_SECONDS,
    }
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Anonymous /metrics from a loopback address; off by default, as a same-host proxy makes every caller
# look local.
METRICS_ALLOW_LOOPBACK = env.bool("METRICS_ALLOW_LOOPBACK", default=False)
# Absolute links (e-mails): by default where gunicorn listens (WEB_BIND), a wildcard address read as loopback.
_web_host, _, _web_port = env("WEB_BIND", default="127.0.0.1:8000").rpartition(":")
SITE_URL = env(
    "SITE_URL",
    default=f"http://{'127.0.0.1' if _web_host in ('', '0.0.0.0', '[::]') else _web_host}:{_web_port}",  # noqa: S104
)

# Logging: JSON lines with the request id ---------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "jieba": {"level": "WARNING"}},
}
