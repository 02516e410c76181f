from django.urls import path

from knowledge_base import views

app_name = "knowledge_base"
urlpatterns = [
    path("", views.index, name="index"),
    path("suggest/", views.suggest, name="suggest"),
    path("preview/", views.markdown_preview, name="preview"),
    path("stale/", views.stale_list, name="stale"),
    path("articles/new/", views.article_new, name="article_new"),
    path("articles/<int:pk>/", views.article_detail, name="article"),
    path("articles/<int:pk>/edit/", views.article_edit, name="article_edit"),
    path("articles/<int:pk>/history/", views.article_history, name="article_history"),
    path(
        "articles/<int:pk>/versions/<int:number>/restore/",
        views.article_restore,
        name="article_restore",
    ),
    path("articles/<int:pk>/helpful/", views.article_helpful, name="article_helpful"),
    path("articles/<int:pk>/solved/", views.article_solved, name="deflect"),
    path("articles/<int:pk>/thanks/", views.deflection_thanks, name="thanks"),
    path("articles/<int:pk>/<str:action>/", views.article_action, name="article_action"),
    path("from-ticket/<str:key>/", views.article_from_ticket_view, name="from_ticket"),
]
