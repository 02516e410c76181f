"""Benchmark of batch identity resolution (issue 19): 1 M customers, 3 M identifiers, 200 k duplicate people.

    python bench/identity.py [--customers 1000000] [--duplicates 200000] [--batch-size 100000] [--keep]

Uses its own database (martech_bench_identity; `--keep` reuses a base of these sizes that was generated
but not yet resolved). Generates in Postgres a base with a known ground truth: customers P1…Pn (n =
customers − duplicates) are one person each and hold an e-mail and a phone (columns, in the forms people
type them: `139 0000 0001`, `Mixed@Case.com `) and a member number; customers D1…Dk (k = duplicates,
created a day later) are second profiles of P1…Pk, each with its own e-mail (or phone) and openid, and
sharing exactly one value with its person: the phone for even k, the e-mail (in another case) for odd k.
One person in 100 without a duplicate carries the blocked phone 13800000000, which must never link them.
The e-mails and phones are also stored as identifiers, normalised, as an identity-aware import leaves
them (about 2.8 M at the default scale), except the value a duplicate shares with its person: that one
only in the duplicate's column (it came from before identity resolution). `--legacy`: no e-mail or phone
stored at all (a base from before identity resolution: the run stores ~2 M of them). Then runs `resolve_identities` twice: a dry run (the graph: stream, normalise, connected
components), and the real run (the merges, in batches, and the identifiers stored), each timed. Checks
the result exactly: n profiles are left, every Dk merged into Pk and nothing else merged.
Ends with one line: find_s=… resolve_s=… customers=… identifiers=… duplicates=… merged=… exact=…
"""

import argparse
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from benchdb import bench_database_setup  # noqa: E402

DB_NAME = "martech_bench_identity"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def generate(customers: int, duplicates: int, *, legacy: bool = False) -> int:
    """The base with its ground truth (see the module's docstring), in one transaction; returns how many
    identifiers it holds (stored; with `legacy`, the column values plus the stored ones)."""
    from django.db import connection, transaction

    people = customers - duplicates
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM crm_tags_customer)")
        if cursor.fetchone()[0]:  # a kept database: start again
            cursor.execute(
                "TRUNCATE crm_tags_customermerge, crm_tags_customeridentifier, crm_tags_event, "
                "crm_tags_customer CASCADE"
            )
        cursor.execute(
            "INSERT INTO crm_tags_customer (external_id, name, email, phone, attributes, created_at, updated_at) "
            "SELECT 'P' || g, '', 'Person' || g || '@Example.com ', "
            "CASE WHEN g > %(k)s AND g %% 100 = 7 THEN '13800000000' "
            "ELSE '139 ' || substr(lpad(g::text, 8, '0'), 1, 4) || ' ' || substr(lpad(g::text, 8, '0'), 5) END, "
            "'{}', now() - interval '2 days', now() FROM generate_series(1, %(n)s) g",
            {"n": people, "k": duplicates},
        )
        cursor.execute(
            "INSERT INTO crm_tags_customer (external_id, name, email, phone, attributes, created_at, updated_at) "
            "SELECT 'D' || g, '', CASE WHEN g %% 2 = 1 THEN 'PERSON' || g || '@example.COM' "
            "ELSE 'second' || g || '@example.com' END, "
            "CASE WHEN g %% 2 = 0 THEN '+86139' || lpad(g::text, 8, '0') ELSE '137' || lpad(g::text, 8, '0') END, "
            "'{}', now() - interval '1 day', now() FROM generate_series(1, %(k)s) g",
            {"k": duplicates},
        )
        cursor.execute(
            "INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at) "
            "SELECT id, CASE WHEN external_id LIKE 'P%%' THEN 'member_no' ELSE 'wechat_openid' END, "
            "CASE WHEN external_id LIKE 'P%%' THEN 'M' || substr(external_id, 2) "
            "ELSE 'wxapp:o' || substr(external_id, 2) END, now() FROM crm_tags_customer"
        )
        if not legacy:
            # as an identity-aware import leaves them: the columns' values stored too, normalised, except
            # the blocked phone and the one value a second profile shares with its person (the person
            # holds it: the duplicate has it in its column only, from before identity resolution)
            cursor.execute(
                "INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at) "
                "SELECT id, 'email', lower(btrim(email)), now() FROM crm_tags_customer "
                "WHERE external_id LIKE 'P%%' OR (external_id LIKE 'D%%' AND substr(external_id, 2)::int %% 2 = 0)",
                {},
            )
            cursor.execute(
                "INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at) "
                "SELECT id, 'phone', '+86' || right(replace(phone, ' ', ''), 11), now() FROM crm_tags_customer "
                "WHERE (external_id LIKE 'P%%' AND phone <> '13800000000') "
                "OR (external_id LIKE 'D%%' AND substr(external_id, 2)::int %% 2 = 1)",
                {},
            )
        cursor.execute("ANALYZE crm_tags_customer")
        cursor.execute("ANALYZE crm_tags_customeridentifier")
        cursor.execute("SELECT count(*) FROM crm_tags_customeridentifier")
        stored = cursor.fetchone()[0]
    print(
        f"generated {customers} customers ({duplicates} duplicates), {stored} stored identifiers: "
        f"{time.perf_counter() - started:.1f}s"
    )
    return stored if not legacy else customers * 3


def exact(people: int, duplicates: int) -> bool:
    """Every Dk merged into Pk, nothing else merged, n profiles left."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_tags_customer")
        left = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE m.merged_external_id = 'D' || substr(s.external_id, 2)) "
            "FROM crm_tags_customermerge m JOIN crm_tags_customer s ON s.id = m.survivor_id"
        )
        merges, right = cursor.fetchone()
    print(
        f"check: {left} profiles left (want {people}), {right} of {merges} merges right (want {duplicates})"
    )
    return left == people and merges == right == duplicates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--duplicates", type=int, default=200_000, help="second profiles of a person")
    parser.add_argument("--batch-size", type=int, default=100_000, help="groups merged per transaction")
    parser.add_argument("--keep", action="store_true", help="reuse the database's base when it is unresolved")
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="e-mails and phones in the customer columns only (a base from before identity resolution): "
        "the run stores them all as identifiers",
    )
    args = parser.parse_args()
    if not 0 < args.duplicates < args.customers / 2:
        parser.error("--duplicates must be positive and less than half of --customers")
    existed = bench_database_setup(DB_NAME, keep=args.keep)

    from django.db import connection

    from crm_tags.identity.batch import resolve_identities

    people = args.customers - args.duplicates
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), (SELECT count(*) FROM crm_tags_customermerge) FROM crm_tags_customer"
        )
        count, merges = cursor.fetchone()
    if existed and count == args.customers and merges == 0:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM crm_tags_customeridentifier")
            identifiers = cursor.fetchone()[0]
        print("reusing the generated base")
    else:
        identifiers = generate(args.customers, args.duplicates, legacy=args.legacy)
    print(f"start: {load()}")
    started = time.perf_counter()
    preview = resolve_identities(dry_run=True)
    find_s = time.perf_counter() - started
    print(
        f"dry run: {preview.groups} groups, {preview.profiles_to_merge} to merge, {find_s:.1f}s {preview.phases}"
    )

    def progress(done: int, total: int) -> None:
        if done == total or done % (args.batch_size * 20) == 0:
            print(f"  merged {done} of {total} groups, {time.perf_counter() - started:.0f}s")

    started = time.perf_counter()
    report = resolve_identities(batch_size=args.batch_size, progress=progress)
    resolve_s = time.perf_counter() - started
    print(f"phases: {report.phases}")
    ok = preview.profiles_to_merge == args.duplicates and exact(people, args.duplicates)
    print(f"end: {load()}")
    print(
        f"find_s={find_s:.2f} resolve_s={resolve_s:.2f} customers={args.customers} identifiers={identifiers} "
        f"duplicates={args.duplicates} merged={report.merged} refused={report.refused} exact={ok}"
    )


if __name__ == "__main__":
    main()
