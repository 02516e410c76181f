from django.urls import path

from campaigns import abtest_views, import_views, kpi_views, plan_views, review_views, views

app_name = "campaigns"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("calendar/", views.calendar, name="calendar"),
    path("utm/", plan_views.utm_builder, name="utm"),
    path("audience-size/", views.audience_size, name="audience_size"),
    path("<str:code>/", views.detail, name="detail"),
    path("<str:code>/edit/", views.edit, name="edit"),
    path("<str:code>/approve/", views.approve, name="approve"),
    path("<str:code>/kpi/", kpi_views.kpi_targets_edit, name="kpi_targets"),
    path("<str:code>/status/", views.set_status, name="set_status"),
    path("<str:code>/tasks/", plan_views.task_add, name="task_add"),
    path("<str:code>/tasks/<int:task_id>/toggle/", plan_views.task_toggle, name="task_toggle"),
    path("<str:code>/metrics/import/", import_views.metrics_import, name="metrics_import"),
    path("<str:code>/touchpoints/import/", import_views.touchpoints_import, name="touchpoints_import"),
    path("<str:code>/conversions/import/", import_views.conversions_import, name="conversions_import"),
    path("<str:code>/ab-tests/", abtest_views.ab_test_add, name="ab_test_add"),
    path(
        "<str:code>/ab-tests/variants/<int:variant_id>/", abtest_views.variant_update, name="variant_update"
    ),
    path(
        "<str:code>/ab-tests/<int:test_id>/import/",
        abtest_views.ab_variants_import,
        name="ab_variants_import",
    ),
    path("<str:code>/review/", review_views.review_save, name="review_save"),
    path("<str:code>/review/publish/", review_views.review_publish, name="review_publish"),
]
