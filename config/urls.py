from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import home
from config.health import healthz
from config.metrics import metrics

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("tickets.api_urls")),
    path("", include("crm_tags.api_urls")),
    path("", include("campaigns.api_urls")),
    path("", include("analytics.api_urls")),
    path("", include("knowledge_base.api_urls")),
    path("", include("privacy.api_urls")),
    path("", include("journeys.api_urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("accounts/", include("accounts.urls")),
    path("requests/", include("tickets.urls")),
    path("customers/", include("crm_tags.urls")),
    path("campaigns/", include("campaigns.urls")),
    path("journeys/", include("journeys.urls")),
    path("dashboards/", include("analytics.urls")),
    path("kb/", include("knowledge_base.urls")),
    path("privacy/", include("privacy.urls")),
    path("search/", include("search.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# The API answers its own error shape (JSON) even when Django answers before or without a view.
handler400 = "config.api.bad_request"
handler403 = "config.api.permission_denied"
handler404 = "config.api.page_not_found"
handler500 = "config.api.server_error"
