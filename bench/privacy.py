"""Benchmark of the person's rights and of consent in tag builds, on the data of bench/tags.py.

    python bench/privacy.py [--customers 1000000] [--events 20000000] [--side 1000000] [--withdrawn 0.01]
                            [--rounds 3] [--runs 5] [--files DIR]

Uses its own database (martech_bench_privacy, kept) loaded by bench/tags.py: when it does not hold the
data yet, runs bench/tags.py --keep --database martech_bench_privacy with the same sizes first, and
adds once what an erasure must also search: `--side` audit entries, access-log rows and campaign
touchpoints (a fifth of them converted), and the order months of the customer dashboard. Then:
- writes a realistic consent table: every customer an e-mail consent, half an analytics one, and the
  `--withdrawn` share withdrew personalisation;
- rebuilds two rules with the consent filter and without it (the same build with the filter switched
  off), interleaved, best of --rounds each, from an empty membership: the bench's event rule and a
  broad attribute rule (three cities of four: ~750 k matches, where a per-row filter would cost most);
  the consent delete is also timed on its own (whole builds on a shared machine vary more than it);
- `--runs` times (after one export not counted: a process's first pays for loading its code): exports
  one person (the job that writes the JSON bundle), then erases them (approval
  to done, commit included), each timed as a whole; a different person each run.
Ends with one line: export_s=… (median) erase_s=… (median) erase_max_s=… event_s=… event_consent_s=…
event_ratio=… broad_s=… broad_consent_s=… broad_ratio=… filter_step_ms=… withdrawn=…
"""

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

# the project's packages first: this script is named like an app (privacy) and must not shadow it
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from benchdb import bench_database_setup  # noqa: E402
from tags import RULE as EVENT_RULE  # noqa: E402

DB_NAME = "martech_bench_privacy"
BROAD_RULE = {"attr": "city", "op": "in", "value": ["Shanghai", "Beijing", "Shenzhen"]}


def side_tables(customers: int, side: int) -> None:
    """Audit entries, access-log rows, touchpoints and conversions, once (generated in Postgres)."""
    from django.db import connection, transaction

    from accounts.models import User
    from accounts.services import user_create
    from analytics import rollups
    from campaigns.models import Campaign

    if Campaign.objects.filter(code="bench-privacy").exists():
        return
    started = time.perf_counter()
    # all in one transaction: a run stopped half-way leaves nothing that looks done
    with transaction.atomic(), connection.cursor() as cursor:
        boss = User.objects.filter(username="bench-dpo").first() or user_create(
            username="bench-dpo",
            role="manager",
            team_name="MarTech support",
            password="bench-dpo-1",
            pii=True,
        )
        campaign = Campaign.objects.create(
            name="Bench privacy",
            code="bench-privacy",
            budget=1000,
            start_date=dt.date(2026, 1, 1),
            end_date=dt.date(2026, 12, 31),
            owner=boss,
            team_id=boss.team_id,
        )
        cursor.execute(
            "INSERT INTO accounts_auditentry (action, object_type, object_id, changes, created_at) "
            "SELECT 'ticket.update', 'tickets.ticket', g::text, jsonb_build_object('status', "
            "jsonb_build_array('new', 'open'), 'note', 'call ' || g), now() - g * interval '1 second' "
            "FROM generate_series(1, %s) g",
            [side],
        )
        cursor.execute(
            # customers that exist (an erasure of an earlier run may have removed some ids)
            "INSERT INTO privacy_unmaskedaccess (user_id, at, kind, customer_id, rows, what) "
            "SELECT NULL, now() - g * interval '1 second', 'customer', c.id, 1, 'B' || g "
            "FROM generate_series(1, %s) g JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n "
            "FROM crm_tags_customer) c ON c.n = 1 + g %% %s",
            [side, customers],
        )
        cursor.execute(
            "INSERT INTO campaigns_touchpoint (campaign_id, customer_external_id, occurred_at, channel, "
            "utm_source, utm_medium, utm_campaign) SELECT %s, 'B' || (g %% %s), now() - g * interval '1 minute', "
            "'wechat', '', '', '' FROM generate_series(1, %s) g",
            [campaign.pk, customers, side],
        )
        cursor.execute(
            "INSERT INTO campaigns_conversion (campaign_id, customer_external_id, occurred_at, revenue) "
            "SELECT campaign_id, customer_external_id, occurred_at + interval '1 hour', 10 "
            "FROM campaigns_touchpoint WHERE campaign_id = %s AND id %% 5 = 0",
            [campaign.pk],
        )
    rollups.refresh_order_months(full=True)
    with connection.cursor() as cursor:
        for table in (
            "accounts_auditentry",
            "privacy_unmaskedaccess",
            "campaigns_touchpoint",
            "campaigns_conversion",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"side tables ({side} rows each) and order months: {time.perf_counter() - started:.1f}s")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--withdrawn", type=float, default=0.01, help="share who withdrew personalisation")
    parser.add_argument("--side", type=int, default=1_000_000, help="audit, access-log, touchpoint rows")
    parser.add_argument("--rounds", type=int, default=3, help="rebuilds of each kind per rule")
    parser.add_argument("--runs", type=int, default=5, help="people exported and erased")
    parser.add_argument("--files", help="directory for bench/tags.py's CSV files (reused)")
    args = parser.parse_args()

    bench_database_setup(DB_NAME, keep=True, redis_db=3)
    from django.db import connection, transaction

    from accounts.models import User
    from crm_tags import services
    from crm_tags.models import Customer, Event, Tag, TagBuild, TagMembership, TagVersion
    from crm_tags.rules import compile_rule
    from privacy import consent, rights

    if Customer.objects.count() < args.customers or Event.objects.count() < args.events:
        print("loading the data with bench/tags.py --keep")
        command = [sys.executable, str(BENCH / "tags.py"), "--keep", "--database", DB_NAME]
        command += ["--customers", str(args.customers)]
        command += ["--events", str(args.events)] + (["--files", args.files] if args.files else [])
        subprocess.run(command, check=True, cwd=ROOT)
    side_tables(args.customers, args.side)
    print(f"start: {load()}; {Customer.objects.count()} customers, {Event.objects.count()} events")

    # --- consent in builds -----------------------------------------------------------------------
    share = int(args.withdrawn * 10000)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE privacy_consent, privacy_consentchange")
        cursor.execute(
            "INSERT INTO privacy_consent (customer_id, purpose, state, source, at) "
            "SELECT id, 'marketing_email', CASE WHEN id %% 3 = 0 THEN 'withdrawn' ELSE 'granted' END, 'bench', "
            "now() FROM crm_tags_customer UNION ALL "
            "SELECT id, 'analytics', 'granted', 'bench', now() FROM crm_tags_customer WHERE id %% 2 = 0 "
            "UNION ALL SELECT id, 'personalisation', CASE WHEN abs(hashint8(id)) %% 10000 < %s THEN 'withdrawn' "
            "ELSE 'granted' END, 'bench', now() FROM crm_tags_customer "
            "WHERE id %% 5 < 2 OR abs(hashint8(id)) %% 10000 < %s",
            [share, share],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE privacy_consent")
        cursor.execute(
            "SELECT count(*) FROM privacy_consent WHERE purpose = 'personalisation' AND state = 'withdrawn'"
        )
        withdrawn = cursor.fetchone()[0]
        cursor.execute("SELECT max(occurred_at) FROM crm_tags_event")
        as_of = cursor.fetchone()[0]
    print(f"consent rows written; personalisation withdrawn: {withdrawn}")

    plain_load = services._load_new_members

    def unfiltered(sql: str, params: list, consent_filter: bool = False) -> tuple[int, int]:
        return plain_load(sql, params, consent_filter=False)

    figures: dict[str, float] = {}
    steps: list[float] = []
    for name, rule in (("event", EVENT_RULE), ("broad", BROAD_RULE)):
        Tag.objects.filter(slug=f"bench-privacy-{name}").update(current_version=None)
        Tag.objects.filter(slug=f"bench-privacy-{name}").delete()
        tag = Tag.objects.create(slug=f"bench-privacy-{name}", name=name, kind="rule")
        version = TagVersion.objects.create(tag=tag, number=1, definition=rule, depends_on=[])
        Tag.objects.filter(pk=tag.pk).update(current_version=version, rollout_percent=100)

        def rebuild(filtered: bool, tag: Tag = tag, version: TagVersion = version) -> tuple[float, TagBuild]:
            TagMembership.objects.filter(tag=tag).delete()  # empty -> full membership, as bench/tags.py
            build = TagBuild.objects.create(tag=tag, version=version, rollout_percent=100, as_of=as_of)
            started = time.perf_counter()
            if filtered:
                build = services.tag_build_run(build=build, queue_dependents=False)
            else:
                with mock.patch.object(services, "_load_new_members", unfiltered):
                    build = services.tag_build_run(build=build, queue_dependents=False)
            return time.perf_counter() - started, build

        rebuild(False)  # warm the caches
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):  # interleaved: drift in the machine's load hits both alike
            for filtered in (False, True):
                seconds, build = rebuild(filtered)
                times[filtered].append(seconds)
                print(
                    f"{name} rule {'with' if filtered else 'without'} the consent filter: {seconds:.3f}s, "
                    f"{build.members} members, {build.excluded_by_consent} excluded, status {build.status}"
                )
        figures[f"{name}_s"], figures[f"{name}_consent_s"] = min(times[False]), min(times[True])
        figures[f"{name}_ratio"] = figures[f"{name}_consent_s"] / figures[f"{name}_s"]
        for _ in range(args.rounds):  # the filter on its own: the rule's matches loaded, then the delete
            with transaction.atomic(), connection.cursor() as cursor:
                compiled = compile_rule(rule, as_of=as_of)
                members, _ = services._load_new_members(compiled.sql, compiled.params)
                started = time.perf_counter()
                consent.personalisation_withdrawn_delete(
                    cursor=cursor, table="crm_new_members", column="customer_id", rows=members
                )
                steps.append(time.perf_counter() - started)
                cursor.execute("DROP TABLE crm_new_members")
        print(
            f"{name} rule: the consent delete alone, median {statistics.median(steps[-args.rounds :]) * 1000:.1f} ms"
        )

    # --- the person's rights ---------------------------------------------------------------------
    manager = User.objects.get(username="bench-dpo")
    no_queue = mock.patch("django.db.transaction.on_commit", lambda fn, using=None, robust=False: None)
    export_s, erase_s = [], []
    first = (
        Customer.objects.filter(external_id__startswith="B").order_by("id").values_list("id", flat=True)[0]
    )
    # the process's first export pays for loading the code of its path once: timed apart
    warm = Customer.objects.filter(pk__gte=first + 500).order_by("id").first()
    with no_queue:
        request = rights.request_file(kind="export", customer_external_id=warm.external_id, by=manager)
    started = time.perf_counter()
    rights.request_export_run(request_id=request.pk)
    print(f"first export in this process (not counted): {time.perf_counter() - started:.3f}s")
    for run in range(args.runs):
        person = Customer.objects.filter(pk__gte=first + 1000 + run * 7919).order_by("id").first()
        events = person.events.count()
        with no_queue:
            request = rights.request_file(kind="export", customer_external_id=person.external_id, by=manager)
        started = time.perf_counter()
        request = rights.request_export_run(request_id=request.pk)
        export_s.append(time.perf_counter() - started)
        assert request.status == "done", request.error
        with no_queue:
            request = rights.request_file(kind="erase", customer_external_id=person.external_id, by=manager)
            started = time.perf_counter()
            request = rights.request_approve(request=request, by=manager)
        request = rights.request_erase_run(request_id=request.pk)
        erase_s.append(time.perf_counter() - started)
        assert request.status == "done", request.error
        print(
            f"run {run}: a person with {events} events: export {export_s[-1]:.3f}s, "
            f"erasure {erase_s[-1]:.3f}s {request.report}"
        )

    print(f"end: {load()}")
    print(
        f"export_s={statistics.median(export_s):.3f} erase_s={statistics.median(erase_s):.3f} "
        f"erase_max_s={max(erase_s):.3f} "
        + " ".join(f"{k}={v:.3f}" for k, v in figures.items())
        + f" filter_step_ms={statistics.median(steps) * 1000:.1f} withdrawn={withdrawn}"
    )


if __name__ == "__main__":
    main()
