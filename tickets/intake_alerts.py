"""`POST /api/v1/intake/alerts/`: monitoring alerts in, incident tickets out (tickets.services.alerts).

Two formats: Prometheus Alertmanager's webhook (version 4: a body with `version` and `alerts`) and a
generic one for any other monitor (`{fingerprint?, status, title, description?, labels?}`). Authenticated
by `Authorization: Bearer $ALERT_INTAKE_TOKEN`; without a token configured the intake answers 503.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle

from config.openapi import ApiErrorSerializer
from tickets import services
from tickets.services.alerts import FIRING, RESOLVED, IncomingAlert, labels_fingerprint

# the schema's `AlertStatusEnum` (SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"])
ALERT_STATUSES = [FIRING, RESOLVED]
MAX_ALERTS = 500  # per delivery; Alertmanager's `max_alerts` keeps a receiver under it
FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class IntakeUnauthorized(exceptions.APIException):
    """401 with a challenge (DRF turns its own NotAuthenticated into 403 on a view without authenticators)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_detail = gettext_lazy("A valid bearer token is required.")
    default_code = "not_authenticated"
    auth_header = 'Bearer realm="alert-intake"'


class IntakeUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = gettext_lazy("Alert intake is off.")
    default_code = "intake_off"


# --- the formats ----------------------------------------------------------------------------------------


class _Labels(serializers.DictField):
    # kept as sent (no trimming): the fingerprint is computed from the exact values
    child = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=10_000)


def _fingerprint_field() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        max_length=128,
        help_text="The de-duplication key; when absent, Alertmanager's fingerprint of the labels.",
    )


def _check_fingerprint(value: str) -> str:
    if not FINGERPRINT_RE.match(value):
        raise serializers.ValidationError(
            _("Use 1 to 128 letters, digits, dots, colons, dashes or underscores.")
        )
    return value


class AlertmanagerAlertSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ALERT_STATUSES)
    labels = _Labels(help_text="`alertname` names the ticket.")
    annotations = _Labels(required=False, help_text="`summary`, `description`, `runbook_url` are shown.")
    startsAt = serializers.DateTimeField(required=False)  # noqa: N815 (Alertmanager's names)
    endsAt = serializers.CharField(required=False, allow_blank=True)  # noqa: N815 ("0001-01-01…" when firing)
    generatorURL = serializers.CharField(required=False, allow_blank=True, max_length=2000)  # noqa: N815
    fingerprint = _fingerprint_field()

    def validate_fingerprint(self, value: str) -> str:
        return _check_fingerprint(value)


class AlertmanagerPayloadSerializer(serializers.Serializer):
    """Alertmanager's webhook body (version 4); fields not listed here are accepted and ignored."""

    version = serializers.ChoiceField(choices=["4"])
    status = serializers.ChoiceField(choices=ALERT_STATUSES, required=False)
    receiver = serializers.CharField(required=False, allow_blank=True)
    groupKey = serializers.CharField(required=False, allow_blank=True)  # noqa: N815
    externalURL = serializers.CharField(required=False, allow_blank=True)  # noqa: N815
    alerts = AlertmanagerAlertSerializer(many=True, allow_empty=False, max_length=MAX_ALERTS)


class GenericAlertSerializer(serializers.Serializer):
    """One alert from any monitor."""

    fingerprint = _fingerprint_field()
    status = serializers.ChoiceField(choices=ALERT_STATUSES)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    labels = _Labels(required=False)

    def validate_fingerprint(self, value: str) -> str:
        return _check_fingerprint(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("fingerprint") and not attrs.get("labels"):
            raise serializers.ValidationError(
                {"fingerprint": _("Give a fingerprint, or labels to derive it from.")}
            )
        return attrs


class AlertOutcomeSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The incident ticket's key.")
    action = serializers.ChoiceField(choices=["opened", "commented", "resolved"])


class AlertIntakeResultSerializer(serializers.Serializer):
    tickets = AlertOutcomeSerializer(many=True, help_text="One per alert that touched a ticket, in order.")


def _from_alertmanager(data: dict[str, Any]) -> list[IncomingAlert]:
    alerts = []
    for alert in data["alerts"]:
        labels = alert["labels"]
        annotations = alert.get("annotations") or {}
        with translation.override(settings.LANGUAGE_CODE):  # the ticket's texts are in the site's language
            name = labels.get("alertname", "").strip() or _("Alert")
        summary = annotations.get("summary", "").strip()
        alerts.append(
            IncomingAlert(
                fingerprint=alert.get("fingerprint") or labels_fingerprint(labels),
                status=alert["status"],
                title=(f"{name}: {summary}" if summary else name)[:200],
                labels=labels,
                annotations=annotations,
                starts_at=alert.get("startsAt"),
                generator_url=alert.get("generatorURL", ""),
                source="Alertmanager",
            )
        )
    return alerts


def _from_generic(data: dict[str, Any]) -> list[IncomingAlert]:
    labels = data.get("labels") or {}
    return [
        IncomingAlert(
            fingerprint=data.get("fingerprint") or labels_fingerprint(labels),
            status=data["status"],
            title=data["title"],
            description=data.get("description", ""),
            labels=labels,
            source="",
        )
    ]


def parse_alerts(body: Any) -> list[IncomingAlert]:
    """The body's alerts, or a ValidationError naming each field at fault (`alerts[0].status`)."""
    if not isinstance(body, dict):
        raise exceptions.ValidationError(_("The body must be a JSON object."))
    if "alerts" in body or "version" in body:
        checked = AlertmanagerPayloadSerializer(data=body)
        checked.is_valid(raise_exception=True)
        return _from_alertmanager(checked.validated_data)
    checked = GenericAlertSerializer(data=body)
    checked.is_valid(raise_exception=True)
    return _from_generic(checked.validated_data)


# --- the view -------------------------------------------------------------------------------------------


def _check_token(request: Request) -> None:
    secret = settings.ALERT_INTAKE_TOKEN
    if not secret:
        raise IntakeUnavailable(_("Alert intake is off: ALERT_INTAKE_TOKEN is not set."))
    scheme, _sep, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise IntakeUnauthorized(_("Send the header Authorization: Bearer <token>."))
    if not hmac.compare_digest(given.strip().encode(), secret.encode()):
        raise IntakeUnauthorized(_("Bad alert intake token."))


class AlertIntakeView(GenericAPIView):
    """Alerts from Prometheus Alertmanager (webhook version 4) or any monitor become incident tickets."""

    serializer_class = AlertIntakeResultSerializer
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    @extend_schema(
        operation_id="intake_alerts",
        description=(
            "Authenticated by `Authorization: Bearer <ALERT_INTAKE_TOKEN>`. A firing alert opens an urgent "
            "incident ticket; the same fingerprint while that ticket is open adds a comment; a resolved "
            "alert adds a comment and resolves the ticket when nobody has touched it. All alerts of a "
            f"delivery or none (at most {MAX_ALERTS})."
        ),
        request=PolymorphicProxySerializer(
            component_name="AlertIntakeRequest",
            serializers=[AlertmanagerPayloadSerializer, GenericAlertSerializer],
            resource_type_field_name=None,
        ),
        responses={
            202: AlertIntakeResultSerializer,
            401: OpenApiResponse(description="The bearer token is missing or wrong."),
            503: OpenApiResponse(
                response=ApiErrorSerializer,
                description="Alert intake is off (ALERT_INTAKE_TOKEN unset, or ALERT_INTAKE_TEAM names no team).",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        _check_token(request)
        alerts = parse_alerts(request.data)
        try:
            outcomes = services.alerts_receive(alerts=alerts)
        except services.AlertIntakeUnavailable as exc:
            raise IntakeUnavailable(str(exc)) from exc
        except (services.TransitionError, DjangoValidationError) as exc:
            raise exceptions.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else getattr(exc, "messages", [str(exc)])
            ) from exc
        return Response({"tickets": outcomes}, status=status.HTTP_202_ACCEPTED)
