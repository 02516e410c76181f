from django.urls import path

from campaigns import abtest_api, api, kpi_api

urlpatterns = [
    path("campaigns/", api.CampaignListCreateView.as_view(), name="api-campaigns"),
    path("campaigns/<str:code>/", api.CampaignDetailView.as_view(), name="api-campaign"),
    path("campaigns/<str:code>/approve/", api.CampaignApproveView.as_view(), name="api-campaign-approve"),
    path(
        "campaigns/<str:code>/metrics/import/",
        api.MetricsImportView.as_view(),
        name="api-campaign-metrics-import",
    ),
    path(
        "campaigns/<str:code>/touchpoints/import/",
        api.TouchpointsImportView.as_view(),
        name="api-campaign-touchpoints-import",
    ),
    path(
        "campaigns/<str:code>/conversions/import/",
        api.ConversionsImportView.as_view(),
        name="api-campaign-conversions-import",
    ),
    path("campaigns/<str:code>/summary/", api.CampaignSummaryView.as_view(), name="api-campaign-summary"),
    path(
        "campaigns/<str:code>/kpi-targets/", kpi_api.KpiTargetsView.as_view(), name="api-campaign-kpi-targets"
    ),
    path(
        "campaigns/<str:code>/ab-tests/",
        abtest_api.ABTestListCreateView.as_view(),
        name="api-campaign-ab-tests",
    ),
    path(
        "campaigns/<str:code>/ab-tests/<int:test_id>/",
        abtest_api.ABTestDetailView.as_view(),
        name="api-campaign-ab-test",
    ),
    path("campaigns/<str:code>/attribution/", api.AttributionView.as_view(), name="api-campaign-attribution"),
    path("utm/", api.UtmBuildView.as_view(), name="api-utm"),
]
