from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/token/", api.ObtainTokenView.as_view(), name="api-token"),
    path("me/", api.MeView.as_view(), name="api-me"),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
]
