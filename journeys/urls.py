from django.urls import path

from journeys import activation_views, views

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
    # audience activation (journeys/activation_views.py)
    path("destinations/", activation_views.destination_list, name="destinations"),
    path("destinations/new/", activation_views.destination_create, name="destination_create"),
    path("destinations/<int:destination_id>/", activation_views.destination_detail, name="destination"),
    path(
        "destinations/<int:destination_id>/edit/", activation_views.destination_edit, name="destination_edit"
    ),
    path("destinations/<int:destination_id>/sync/", activation_views.sync_start, name="destination_sync"),
    path(
        "destinations/<int:destination_id>/schedules/new/",
        activation_views.schedule_create,
        name="schedule_create",
    ),
    path("destinations/schedules/", activation_views.schedule_list, name="schedules"),
    path(
        "destinations/schedules/<int:schedule_id>/delete/",
        activation_views.schedule_delete,
        name="schedule_delete",
    ),
    path("destinations/syncs/", activation_views.sync_log, name="sync_log"),
    path("destinations/syncs/<int:sync_id>/retry/", activation_views.sync_retry, name="sync_retry"),
]
