from django.urls import path

from crm_tags import views

app_name = "crm_tags"
urlpatterns = [
    path("", views.index, name="index"),
]
