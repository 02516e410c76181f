from django.urls import path

from crm_tags import api, identity_api, tag_api, value_api

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
    path("tags/", tag_api.TagListAPI.as_view(), name="crm-tags"),
    path("tags/<slug:slug>/", tag_api.TagDetailAPI.as_view(), name="crm-tag"),
    path("tags/<slug:slug>/versions/", tag_api.TagVersionsAPI.as_view(), name="crm-tag-versions"),
    path("tags/<slug:slug>/preview/", tag_api.TagPreviewAPI.as_view(), name="crm-tag-preview"),
    path(
        "tags/<slug:slug>/preview/cancel/",
        tag_api.TagPreviewCancelAPI.as_view(),
        name="crm-tag-preview-cancel",
    ),
    path("tags/<slug:slug>/publish/", tag_api.TagPublishAPI.as_view(), name="crm-tag-publish"),
    path("tags/<slug:slug>/rollback/", tag_api.TagRollbackAPI.as_view(), name="crm-tag-rollback"),
    path("tags/<slug:slug>/builds/", tag_api.TagBuildListAPI.as_view(), name="crm-tag-builds"),
    path(
        "tags/<slug:slug>/builds/<int:build_id>/", tag_api.TagBuildDetailAPI.as_view(), name="crm-tag-build"
    ),
    path("tags/<slug:slug>/members/", tag_api.TagMembersAPI.as_view(), name="crm-tag-members"),
    path(
        "tags/<slug:slug>/members/upload/",
        tag_api.TagMembersUploadAPI.as_view(),
        name="crm-tag-members-upload",
    ),
]
