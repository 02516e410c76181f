from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.index, name="index"),
    path("support/", views.dashboard, {"name": "support"}, name="support"),
    path("marketing/", views.dashboard, {"name": "marketing"}, name="marketing"),
    path("customers/", views.dashboard, {"name": "customers"}, name="customers"),
    path("<str:name>/charts/<str:key>/", views.chart_data, name="chart"),
    path("reports/", views.reports, name="reports"),
    path("reports/<int:pk>/progress/", views.report_progress, name="report_progress"),
    path("reports/<int:pk>/cancel/", views.report_cancel, name="report_cancel"),
    path("subscriptions/", views.subscriptions, name="subscriptions"),
    path("subscriptions/<int:pk>/delete/", views.subscription_delete, name="subscription_delete"),
]
