from django.urls import path

from privacy import access_log, consent_views, views

app_name = "privacy"
urlpatterns = [
    path("customers/<str:external_id>/consent/", consent_views.customer_consent, name="customer_consent"),
    path(
        "customers/<str:external_id>/consent/set/",
        consent_views.customer_consent_set,
        name="customer_consent_set",
    ),
    path("access-log/", access_log.access_log_page, name="access_log"),
    path("requests/", views.requests, name="requests"),
    path("requests/file/", views.request_file, name="request_file"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/approve/", views.request_approve, name="request_approve"),
    path("requests/<int:pk>/download/", views.request_download, name="request_download"),
]
