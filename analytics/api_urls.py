from django.urls import path

from analytics import api

urlpatterns = [
    path("analytics/support/", api.SupportDashboardApi.as_view(), name="api-analytics-support"),
    path("analytics/marketing/", api.MarketingDashboardApi.as_view(), name="api-analytics-marketing"),
    path("analytics/customers/", api.CustomersDashboardApi.as_view(), name="api-analytics-customers"),
    path("reports/", api.ReportJobListCreateApi.as_view(), name="api-reports"),
    path("reports/<int:pk>/", api.ReportJobDetailApi.as_view(), name="api-report"),
    path("reports/<int:pk>/download/", api.ReportJobDownloadApi.as_view(), name="api-report-download"),
    path("reports/<int:pk>/cancel/", api.ReportJobCancelApi.as_view(), name="api-report-cancel"),
]
