"""The per-customer purchase days the value fit reads instead of every order (crm_tags/value/purchases.py
keeps them exact). Registered with the app through crm_tags.models."""

from django.db import models


class CustomerPurchaseDays(models.Model):
    """A customer's orders counted by local day (orders of one day are one purchase, their amounts summed),
    over all their order events: exact for every customer without an order event newer than the upkeep's
    watermark (see crm_tags.value.purchases)."""

    customer = models.OneToOneField(
        "crm_tags.Customer", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    first_day = models.DateField()
    last_day = models.DateField()
    days = models.IntegerField()
    orders = models.BigIntegerField()
    spent = models.DecimalField(max_digits=24, decimal_places=2)
    first_day_spent = models.DecimalField(max_digits=24, decimal_places=2)
    last_at = models.DateTimeField()

    class Meta:
        app_label = "crm_tags"


class PurchaseDaysUpkeep(models.Model):
    """One row (id 1): which event type and time zone the purchase days count, and the event id up to which
    every order event is counted in them. An empty event type means they are not built yet."""

    event_type = models.CharField(max_length=64, default="", blank=True)
    time_zone = models.CharField(max_length=64, default="", blank=True)
    watermark = models.BigIntegerField(default=0)
    rebuilt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "crm_tags"
