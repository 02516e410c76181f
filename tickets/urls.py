from django.urls import path

from tickets import views

app_name = "tickets"
urlpatterns = [
    path("", views.my_requests, name="my_requests"),
    path("queue/", views.queue, name="queue"),
]
