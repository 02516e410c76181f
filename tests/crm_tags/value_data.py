"""The CDNOW sample loaded as order events (through the real importer), and its pandas reference."""

import io
from pathlib import Path

import pandas as pd

from crm_tags import importers
from crm_tags.models import Customer

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt"


def cdnow_orders() -> pd.DataFrame:
    """One row per order: customer (an int), day (a Timestamp) and amount."""
    orders = pd.read_csv(
        CDNOW,
        sep=r"\s+",
        header=None,
        names=["master", "customer", "day", "cds", "amount"],
        dtype={"day": str},
    )
    orders["day"] = pd.to_datetime(orders["day"], format="%Y%m%d")
    return orders[["customer", "day", "amount"]]


def external_id(customer: int) -> str:
    return f"CD{customer:05d}"


def load_cdnow(event_type: str = "order", amount_scale: int = 1) -> pd.DataFrame:
    """Create the 2,357 customers and their orders (at noon, local time; amounts times `amount_scale`);
    returns the orders."""
    orders = cdnow_orders()
    orders["amount"] *= amount_scale
    Customer.objects.bulk_create(
        [Customer(external_id=external_id(c)) for c in sorted(orders["customer"].unique())]
    )
    lines = ["customer_external_id,event_type,occurred_at,amount,channel"]
    lines += [
        f"{external_id(c)},{event_type},{d:%Y-%m-%d}T12:00:00+08:00,{a:.2f},web"
        for c, d, a in orders.itertuples(index=False)
    ]
    importers.import_events(io.StringIO("\n".join(lines) + "\n"))
    return orders
