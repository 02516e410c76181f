from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/token/", api.ObtainTokenView.as_view(), name="api-token"),
    path("auth/tokens/", api.ApiTokenListView.as_view(), name="api-tokens"),
    path("auth/tokens/<int:token_id>/", api.ApiTokenDetailView.as_view(), name="api-token-detail"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
]
