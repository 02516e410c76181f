from django.urls import path

from journeys import api
from journeys.activation import api as activation_api

urlpatterns = [
    path("journeys/", api.JourneyListCreateApi.as_view(), name="journeys-list"),
    path("journeys/<int:pk>/", api.JourneyDetailApi.as_view(), name="journeys-detail"),
    path("journeys/<int:pk>/versions/", api.JourneyVersionCreateApi.as_view(), name="journeys-versions"),
    path("journeys/<int:pk>/activate/", api.JourneyActivateApi.as_view(), name="journeys-activate"),
    path("journeys/<int:pk>/pause/", api.JourneyPauseApi.as_view(), name="journeys-pause"),
    path("journeys/<int:pk>/stats/", api.JourneyStatsApi.as_view(), name="journeys-stats"),
    path("journeys/<int:pk>/enrolments/", api.JourneyEnrolmentsApi.as_view(), name="journeys-enrolments"),
    path("journeys/<int:pk>/dry-run/", api.JourneyDryRunApi.as_view(), name="journeys-dry-run"),
    path(
        "journeys/<int:pk>/dry-run/<int:job_id>/",
        api.JourneyDryRunDetailApi.as_view(),
        name="journeys-dry-run-detail",
    ),
    path("destinations/", api.DestinationListCreateApi.as_view(), name="journeys-destinations"),
    # audience activation (journeys/activation/api.py)
    path(
        "destinations/<int:pk>/syncs/",
        activation_api.DestinationSyncsApi.as_view(),
        name="journeys-destination-syncs",
    ),
    path(
        "destinations/<int:pk>/syncs/<int:sync_id>/",
        activation_api.DestinationSyncApi.as_view(),
        name="journeys-destination-sync",
    ),
    path(
        "destinations/<int:pk>/syncs/<int:sync_id>/retry/",
        activation_api.DestinationSyncRetryApi.as_view(),
        name="journeys-destination-sync-retry",
    ),
]
