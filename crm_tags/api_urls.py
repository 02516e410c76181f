from django.urls import path

from crm_tags import api, identity_api, value_api

urlpatterns = [
    path("customers/", api.CustomerListAPI.as_view(), name="crm-customers"),
    path("customers/import/", api.CustomerImportAPI.as_view(), name="crm-customers-import"),
    # before customers/<external_id>/, which would take these names for external ids
    path("customers/value-model/", value_api.ValueModelAPI.as_view(), name="crm-value-model"),
    path(
        "customers/lead-score-rules/", value_api.LeadScoreRuleListAPI.as_view(), name="crm-lead-score-rules"
    ),
    path(
        "customers/lead-score-rules/<int:rule_id>/",
        value_api.LeadScoreRuleDetailAPI.as_view(),
        name="crm-lead-score-rule",
    ),
    path("customers/resolve/", identity_api.CustomerResolveAPI.as_view(), name="crm-customers-resolve"),
    path("customers/merge/", identity_api.CustomerMergeAPI.as_view(), name="crm-customers-merge"),
    path("customers/<str:external_id>/", api.CustomerDetailAPI.as_view(), name="crm-customer"),
    path(
        "customers/<str:external_id>/unmerge/",
        identity_api.CustomerUnmergeAPI.as_view(),
        name="crm-customer-unmerge",
    ),
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
