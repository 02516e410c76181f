from django.urls import path

from crm_tags import identity_views, import_views, views

app_name = "crm_tags"
urlpatterns = [
    path("", views.index, name="index"),
    path("c/<str:external_id>/", views.customer_detail, name="customer_detail"),
    path("c/<str:external_id>/identity/", identity_views.customer_identity, name="customer_identity"),
    path("c/<str:external_id>/unmerge/", identity_views.customer_unmerge, name="customer_unmerge"),
    path("duplicates/", identity_views.duplicates, name="duplicates"),
    path("duplicates/merge/", identity_views.duplicates_merge, name="duplicates_merge"),
    path("imports/", import_views.imports, name="imports"),
    path("imports/<int:pk>/", import_views.import_job, name="import_job"),
    path("imports/<int:pk>/progress/", import_views.import_job_progress, name="import_job_progress"),
    path("imports/<int:pk>/errors.csv", import_views.import_job_errors_csv, name="import_job_errors_csv"),
    path("tags/", views.tag_list, name="tag_list"),
    path("tags/new/", views.tag_create, name="tag_create"),
    path("tags/<slug:slug>/", views.tag_detail, name="tag_detail"),
    path("tags/<slug:slug>/versions/", views.tag_version_save, name="tag_version_save"),
    path("tags/<slug:slug>/preview/", views.tag_preview, name="tag_preview"),
    path("tags/<slug:slug>/publish/", views.tag_publish, name="tag_publish"),
    path("tags/<slug:slug>/rollback/", views.tag_rollback, name="tag_rollback"),
    path("tags/<slug:slug>/builds/", views.tag_builds, name="tag_builds"),
    path("tags/<slug:slug>/members/", views.tag_members, name="tag_members"),
    path("tags/<slug:slug>/members.csv", views.tag_members_csv, name="tag_members_csv"),
    path("tags/<slug:slug>/upload/", views.tag_upload, name="tag_upload"),
]
