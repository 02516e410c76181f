from django.urls import path

from privacy import access_log, api, consent_api

urlpatterns = [
    path(
        "customers/<str:external_id>/consent/",
        consent_api.CustomerConsentAPI.as_view(),
        name="privacy-customer-consent",
    ),
    path("privacy/access-log/", access_log.AccessLogAPI.as_view(), name="privacy-access-log"),
    path("privacy/requests/", api.RequestListCreateApi.as_view(), name="privacy-requests"),
    path("privacy/requests/<int:pk>/", api.RequestDetailApi.as_view(), name="privacy-request"),
    path(
        "privacy/requests/<int:pk>/approve/", api.RequestApproveApi.as_view(), name="privacy-request-approve"
    ),
    path(
        "privacy/requests/<int:pk>/download/",
        api.RequestDownloadApi.as_view(),
        name="privacy-request-download",
    ),
]
