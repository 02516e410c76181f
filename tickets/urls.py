from django.urls import path

from tickets import queue_views, sla_views, views

app_name = "tickets"
urlpatterns = [
    path("", views.my_requests, name="my_requests"),
    path("new/", views.ticket_new, name="new"),
    path("preview/", views.markdown_preview, name="preview"),
    path("queue/", queue_views.queue, name="queue"),
    path("queue/export/", queue_views.queue_export, name="queue_export"),
    path("queue/bulk/", queue_views.queue_bulk, name="queue_bulk"),
    path("queue/views/", queue_views.saved_view_save_view, name="saved_view_save"),
    path("queue/views/<int:view_id>/delete/", queue_views.saved_view_delete_view, name="saved_view_delete"),
    path("sla/", sla_views.sla_policies_view, name="sla"),
    path("sla/calendars/new/", sla_views.sla_calendar_create_view, name="sla_calendar_create"),
    path("sla/calendars/<int:pk>/load-holidays/", sla_views.sla_calendar_load_view, name="sla_calendar_load"),
    path("files/<int:pk>/", views.attachment_download, name="attachment"),
    path("<str:key>/", views.ticket_detail, name="detail"),
    path("<str:key>/transition/", views.ticket_transition_view, name="transition"),
    path("<str:key>/comment/", views.comment_add_view, name="comment"),
    path("<str:key>/triage/", views.triage_view, name="triage"),
    path("<str:key>/assign/", views.assign_view, name="assign"),
    path("<str:key>/plan/", views.plan_view, name="plan"),
    path("<str:key>/plan/review/", views.plan_review_view, name="plan_review"),
    path("<str:key>/links/", views.link_add_view, name="link_add"),
    path("<str:key>/links/<int:link_id>/delete/", views.link_remove_view, name="link_remove"),
    path("<str:key>/rate/", views.rate_view, name="rate"),
    path("<str:key>/retrospective/", views.retrospective_view, name="retrospective"),
    path("<str:key>/watch/", views.watch_view, name="watch"),
]
