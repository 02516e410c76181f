"""REST API for customers and their imports (paths and JSON names are a contract; see issue 4).
Tags are in crm_tags/tag_api.py."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.inputs import FormParser, MultiPartParser
from crm_tags import permissions, selectors, services, value_api
from crm_tags.identity.selectors import identity_shown
from crm_tags.models import CUSTOMER_FILE_COLUMNS, Customer


class CanImport(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return permissions.can_import(request.user)


# --- customers -------------------------------------------------------------------------------------


class CustomerSerializer(serializers.ModelSerializer):
    """A customer with its personal values as the viewer may see them: it reads only the `*_shown` values
    that `selectors.customers_shown` set (privacy.personal_data decides), never the raw fields."""

    name = serializers.CharField(source="name_shown", allow_null=True)
    email = serializers.CharField(source="email_shown", allow_null=True)
    phone = serializers.CharField(source="phone_shown", allow_null=True)
    birth_date = serializers.CharField(
        source="birth_date_shown", allow_null=True, help_text="YYYY-MM-DD, or masked without view_pii"
    )
    attributes = serializers.DictField(source="attributes_shown")

    class Meta:
        model = Customer
        fields = [*CUSTOMER_FILE_COLUMNS, "attributes"]


class CustomerTagSerializer(serializers.Serializer):
    slug = serializers.CharField(source="tag.slug")
    name = serializers.CharField(source="tag.name")
    since = serializers.DateTimeField()


class CustomerMergeEntrySerializer(serializers.Serializer):
    merge_id = serializers.IntegerField()
    # `from` is a keyword: set through the class namespace
    vars()["from"] = serializers.CharField(help_text="external id of the merged profile")
    at = serializers.DateTimeField()


class CustomerIdentifierSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField(help_text="masked without view_pii (external ids as they are)")


class CustomerDetailSerializer(CustomerSerializer):
    tags = serializers.SerializerMethodField()
    # set by identity.selectors.identity_shown (values already fit for the viewer)
    identifiers = CustomerIdentifierSerializer(source="identifiers_shown", many=True, read_only=True)
    merged_from = serializers.ListField(child=serializers.CharField(), read_only=True)
    merges = CustomerMergeEntrySerializer(source="merges_shown", many=True, read_only=True)
    rfm = serializers.SerializerMethodField()
    value = serializers.SerializerMethodField()

    class Meta(CustomerSerializer.Meta):
        fields = [
            *CustomerSerializer.Meta.fields,
            "tags",
            "rfm",
            "value",
            "identifiers",
            "merged_from",
            "merges",
        ]

    @extend_schema_field(CustomerTagSerializer(many=True))
    def get_tags(self, obj: Customer) -> list[dict]:
        return CustomerTagSerializer(selectors.customer_tags(customer=obj), many=True).data

    @extend_schema_field(value_api.RfmSerializer(allow_null=True))
    def get_rfm(self, obj: Customer) -> dict | None:
        stored = value_api.stored_value(obj)
        return value_api.RfmSerializer(stored).data if stored else None

    @extend_schema_field(value_api.CustomerValueSerializer(allow_null=True))
    def get_value(self, obj: Customer) -> dict | None:
        stored = value_api.stored_value(obj)
        return value_api.CustomerValueSerializer(stored).data if stored else None


class CustomerListAPI(generics.ListAPIView):
    serializer_class = CustomerSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, description="only members of this tag (slug)"),
            OpenApiParameter(
                "q", str, description="search the external id (and the name, e-mail and phone with view_pii)"
            ),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return selectors.customers_for_user(
            user=self.request.user,
            q=self.request.query_params.get("q", ""),
            tag=self.request.query_params.get("tag", ""),
        )

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        selectors.customers_shown(page, user=self.request.user, what="customers API")
        return page


class CustomerDetailAPI(APIView):
    @extend_schema(responses=CustomerDetailSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        customer = selectors.customer_get_for_user(user=request.user, external_id=external_id)
        identity_shown(customer, viewer=request.user)
        return Response(CustomerDetailSerializer(customer).data)


class CrmImportFileSerializer(serializers.Serializer):
    file = serializers.FileField()


class CrmImportResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField(help_text="existing rows the import changed")
    unchanged = serializers.IntegerField(help_text="existing rows the import found as they were")
    customers = serializers.IntegerField()


class _ImportAPI(APIView):
    permission_classes = [IsAuthenticated, CanImport]
    parser_classes = [MultiPartParser, FormParser]
    service = staticmethod(services.customers_import)

    @extend_schema(request=CrmImportFileSerializer, responses={201: CrmImportResultSerializer})
    def post(self, request: Request) -> Response:
        form = CrmImportFileSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = self.service(upload=form.validated_data["file"], by=request.user)
        return Response(CrmImportResultSerializer(result).data, status=status.HTTP_201_CREATED)


class CustomerImportAPI(_ImportAPI):
    """Import customers (CSV: external_id, name, email, phone, city, gender, birth_date, signup_at,
    source_channel, then any attribute columns). Attribute columns are stored typed: a column whose
    cells are all numbers, true/false or days (YYYY-MM-DD) is stored as JSON numbers, booleans or ISO
    days, so rules compare them as such; a header may declare the type (`vip_level:number`,
    `opt_in:boolean`, `joined:date`, `zip:text`), and a cell that does not fit is a bad row."""

    service = staticmethod(services.customers_import)


class EventImportAPI(_ImportAPI):
    service = staticmethod(services.events_import)
