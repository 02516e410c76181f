from django.urls import path

from journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.journey_list, name="list"),
    path("new/", views.journey_create, name="create"),
    path("<int:journey_id>/", views.journey_detail, name="detail"),
    path("<int:journey_id>/stats/", views.journey_stats, name="stats"),
    path("<int:journey_id>/save/", views.journey_save, name="save"),
    path("<int:journey_id>/activate/", views.journey_activate, name="activate"),
    path("<int:journey_id>/pause/", views.journey_pause, name="pause"),
    path("<int:journey_id>/enrolments/", views.enrolment_inspector, name="enrolments"),
]
