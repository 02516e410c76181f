from django.urls import path

from knowledge_base import api

urlpatterns = [
    path("kb/articles/", api.ArticleListCreateView.as_view(), name="api-kb-articles"),
    path("kb/articles/<int:pk>/", api.ArticleDetailView.as_view(), name="api-kb-article"),
    path("kb/articles/<int:pk>/submit/", api.ArticleSubmitView.as_view(), name="api-kb-article-submit"),
    path("kb/articles/<int:pk>/publish/", api.ArticlePublishView.as_view(), name="api-kb-article-publish"),
    path(
        "kb/articles/<int:pk>/versions/", api.ArticleVersionListView.as_view(), name="api-kb-article-versions"
    ),
]
