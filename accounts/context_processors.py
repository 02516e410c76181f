from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts import roles


def navigation(request: HttpRequest) -> dict:
    """The left navigation: only the sections the person may use."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(request, "two_factor_gate", None):
        # (a session still owing its second factor sees nothing of the portal)
        return {"nav_items": [], "unread_notifications": 0}
    items = [("requests", _("Requests"), reverse("tickets:my_requests"))]
    if roles.is_agent(user):
        items.append(("queue", _("Queue"), reverse("tickets:queue")))
        items.append(("routing", _("Routing"), reverse("tickets:routing")))  # tickets.request_type_views
    items.append(("customers", _("Customers & tags"), reverse("crm_tags:index")))
    items.append(("campaigns", _("Campaigns"), reverse("campaigns:index")))
    items.append(("journeys", _("Journeys"), reverse("journeys:list")))
    if roles.can_view_dashboards(user):
        items.append(("dashboards", _("Dashboards"), reverse("analytics:index")))
    items.append(("kb", _("Knowledge base"), reverse("knowledge_base:index")))
    if roles.is_manager(user):
        items.append(("privacy", _("Personal data"), reverse("privacy:requests")))
    if roles.can_edit_security_policy(user):
        items.append(("security", _("Security"), reverse("accounts:security_policy")))
    if roles.can_use_admin(user):
        items.append(("admin", _("Admin"), reverse("admin:index")))
    unread = user.notifications.filter(read_at__isnull=True).count()
    return {"nav_items": items, "unread_notifications": unread, "user_role": roles.role_of(user)}
