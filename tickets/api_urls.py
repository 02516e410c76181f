from django.urls import path

from tickets import api, intake_alerts, oncall_api, request_types_api

urlpatterns = [
    path("tickets/", api.TicketListCreateView.as_view(), name="api-tickets"),
    path("tickets/<str:key>/", api.TicketDetailView.as_view(), name="api-ticket"),
    path("tickets/<str:key>/transition/", api.TicketTransitionView.as_view(), name="api-ticket-transition"),
    path("tickets/<str:key>/comments/", api.TicketCommentsView.as_view(), name="api-ticket-comments"),
    path("tickets/<str:key>/assign/", api.TicketAssignView.as_view(), name="api-ticket-assign"),
    path("tickets/<str:key>/accept/", api.TicketAcceptView.as_view(), name="api-ticket-accept"),
    path("tickets/<str:key>/reject/", api.TicketRejectView.as_view(), name="api-ticket-reject"),
    path("tickets/<str:key>/rating/", api.TicketRatingView.as_view(), name="api-ticket-rating"),
    path("tickets/<str:key>/events/", api.TicketEventsView.as_view(), name="api-ticket-events"),
    path("intake/im/", api.ImIntakeView.as_view(), name="api-intake-im"),
    path("intake/alerts/", intake_alerts.AlertIntakeView.as_view(), name="api-intake-alerts"),
    path("oncall/", oncall_api.OnCallView.as_view(), name="api-oncall"),
    path(
        "teams/<int:id>/request-types/",
        request_types_api.TeamRequestTypesView.as_view(),
        name="api-team-request-types",
    ),
    path(
        "tickets/<str:key>/custom-fields/",
        request_types_api.TicketCustomFieldsView.as_view(),
        name="api-ticket-custom-fields",
    ),
]
