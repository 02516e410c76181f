"""The stored ranks and the same ranks recounted from the events with a window function (independent of
the code that keeps them): tests of every writer compare the two."""

from django.db import connection


def stored_ranks() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_type, k, customer_id, occurred_at FROM crm_tags_eventrank ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


def recounted_ranks() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.event_type, p.k, x.customer_id, x.occurred_at FROM crm_tags_rankedcount p "
            "JOIN (SELECT customer_id, event_type, occurred_at, row_number() OVER ("
            "PARTITION BY customer_id, event_type ORDER BY occurred_at DESC) AS n FROM crm_tags_event) x "
            "ON x.event_type = p.event_type AND x.n = p.k ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()
