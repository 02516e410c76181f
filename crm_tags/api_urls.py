from django.urls import path

from crm_tags import api

urlpatterns = [
    path("customers/", api.CustomerListAPI.as_view(), name="crm-customers"),
    path("customers/import/", api.CustomerImportAPI.as_view(), name="crm-customers-import"),
    path("customers/<str:external_id>/", api.CustomerDetailAPI.as_view(), name="crm-customer"),
    path("events/import/", api.EventImportAPI.as_view(), name="crm-events-import"),
    path("tags/", api.TagListAPI.as_view(), name="crm-tags"),
    path("tags/<slug:slug>/", api.TagDetailAPI.as_view(), name="crm-tag"),
    path("tags/<slug:slug>/versions/", api.TagVersionsAPI.as_view(), name="crm-tag-versions"),
    path("tags/<slug:slug>/preview/", api.TagPreviewAPI.as_view(), name="crm-tag-preview"),
    path(
        "tags/<slug:slug>/preview/cancel/", api.TagPreviewCancelAPI.as_view(), name="crm-tag-preview-cancel"
    ),
    path("tags/<slug:slug>/publish/", api.TagPublishAPI.as_view(), name="crm-tag-publish"),
    path("tags/<slug:slug>/rollback/", api.TagRollbackAPI.as_view(), name="crm-tag-rollback"),
    path("tags/<slug:slug>/builds/", api.TagBuildListAPI.as_view(), name="crm-tag-builds"),
    path("tags/<slug:slug>/builds/<int:build_id>/", api.TagBuildDetailAPI.as_view(), name="crm-tag-build"),
    path("tags/<slug:slug>/members/", api.TagMembersAPI.as_view(), name="crm-tag-members"),
    path(
        "tags/<slug:slug>/members/upload/", api.TagMembersUploadAPI.as_view(), name="crm-tag-members-upload"
    ),
]
