"""REST API for a customer's consent per purpose (paths and JSON names are a contract: see issue 15)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from privacy import consent, permissions
from privacy.models import ConsentState, Purpose


class CanViewConsent(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_view_consent(request.user)


class CanEditConsent(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_edit_consent(request.user)


class CustomerConsentPurposeSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ConsentState.choices)
    source = serializers.CharField(help_text='"api", "web", "import"...; "" when unknown')
    at = serializers.DateTimeField(allow_null=True, help_text="since when; null when unknown")


# one property per purpose, so the schema lists them
CustomerConsentPurposesSerializer = type(
    "CustomerConsentPurposesSerializer",
    (serializers.Serializer,),
    {purpose: CustomerConsentPurposeSerializer() for purpose in Purpose.values},
)


class CustomerConsentSerializer(serializers.Serializer):
    purposes = CustomerConsentPurposesSerializer()


CustomerConsentUpdateSerializer = type(
    "CustomerConsentUpdateSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "The purposes to set (any subset); an unknown purpose or state answers 400 naming it.",
        **{
            purpose: serializers.ChoiceField(choices=ConsentState.choices, required=False)
            for purpose in Purpose.values
        },
    },
)


class CustomerConsentAPI(APIView):
    """A customer's consent per purpose: read by anyone signed in, recorded by support staff."""

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method == "PUT":
            return [IsAuthenticated(), CanEditConsent()]
        return [IsAuthenticated(), CanViewConsent()]

    @extend_schema(
        responses={200: CustomerConsentSerializer, 404: OpenApiResponse(description="no such customer")}
    )
    def get(self, request: Request, external_id: str) -> Response:
        customer = consent.consent_customer_get(user=request.user, external_id=external_id)
        return Response(CustomerConsentSerializer(consent.consent_for(customer)).data)

    @extend_schema(
        request=CustomerConsentUpdateSerializer,
        responses={
            200: CustomerConsentSerializer,
            400: OpenApiResponse(description="unknown purpose or state (the error names the key)"),
            404: OpenApiResponse(description="no such customer"),
        },
    )
    def put(self, request: Request, external_id: str) -> Response:
        customer = consent.consent_customer_get(user=request.user, external_id=external_id)
        data: Any = request.data
        try:
            current = consent.consent_set(
                customer=customer, states=data, source=consent.SOURCE_API, by=request.user
            )
        except consent.ConsentInvalid as exc:
            raise exceptions.ValidationError({exc.key: [exc.message]}) from exc
        return Response(CustomerConsentSerializer(current).data)
