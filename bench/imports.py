"""Benchmark of the identity step of customer imports (issue 19): what identifiers cost an import.

    python bench/imports.py [--rows 100000] [--base 100000] [--links 100] [--runs 2] [--no-baseline]

Uses its own database (martech_bench_imports). Generates in Postgres a resolved base of `--base`
customers B1…Bn, each with an e-mail and a phone column and the matching stored identifiers (e-mail,
phone, member number, external id), then writes one customer file of `--rows` new rows N1…Nk with an
e-mail (`User1@Example.com ` typed forms), a phone (`139 0000 0001`) and a member number each; the first
`--links` rows carry the phone of B1…B`links` in another typed form (and no member number), so they link
to that profile and merge into it. Each import runs in a transaction that is rolled back (and the
tables vacuumed), so every variant starts from the same base; the variants of one round run one after
the other, rounds repeat, and the best of the rounds is reported:

- plain: the file imported with the identity step switched off (the cost of the import itself);
- identity: the same file with the identity step (the merges of the linking rows included);
- noid: the same file without its identifier values (e-mail and phone empty, no member number), which
  skips the identity step;
- baseline_plain / baseline_identity: the same two with the code before the set-based identity step
  (crm_tags/identity/imports.py and crm_tags/importers/customers.py of commit BASELINE, loaded from git),
  unless --no-baseline or git cannot give that code.

Checks every identity run: `--links` merges, `--rows` - `--links` new profiles, and each new row's
e-mail, phone and member number stored as identifiers of its profile.
Ends with one line: plain_s=… identity_s=… ratio=… noid_s=… merge_s=… (the part of identity_s spent merging the
linked rows, pair by pair) baseline_plain_s=… baseline_identity_s=… baseline_ratio=… rows=… base=… links=…
"""

import argparse
import contextlib
import csv
import importlib.util
import io
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != BENCH), str(BENCH)]

from benchdb import bench_database_setup  # noqa: E402

DB_NAME = "martech_bench_imports"
# the last commit with the per-row identity step (a correlated count per row, a whole-base graph per merge)
BASELINE = "3eb4332"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def generate(base: int) -> None:
    """The resolved base (see the module's docstring) in the new database, in one transaction."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO crm_tags_customer (external_id, name, email, phone, attributes, created_at, updated_at) "
            "SELECT 'B' || g, 'Base ' || g, 'base' || g || '@example.com', '+86138' || lpad(g::text, 8, '0'), "
            "jsonb_build_object('member_no', 'BM' || g), now() - interval '30 days', now() "
            "FROM generate_series(1, %s) g",
            [base],
        )
        cursor.execute(
            "INSERT INTO crm_tags_customeridentifier (customer_id, kind, value, created_at) "
            "SELECT id, k.kind, k.value, now() FROM crm_tags_customer, LATERAL (VALUES "
            "('email', email), ('phone', phone), ('member_no', attributes->>'member_no'), "
            "('external_id', external_id)) k(kind, value)"
        )
        cursor.execute("ANALYZE crm_tags_customer")
        cursor.execute("ANALYZE crm_tags_customeridentifier")
    print(f"generated a base of {base} customers: {time.perf_counter() - started:.1f}s")


def customer_file(rows: int, links: int, *, identifiers: bool = True) -> bytes:
    """The file of new rows (see the module's docstring); without `identifiers` the same rows with no
    e-mail, phone or member number."""
    from crm_tags.importers import CUSTOMER_COLUMNS

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CUSTOMER_COLUMNS, *(["member_no"] if identifiers else [])])
    for i in range(1, rows + 1):
        digits = f"{i:08d}"
        if not identifiers:
            email = phone = ""
        elif i <= links:  # B{i}'s phone, typed another way
            email, phone = f"User{i}@Example.com ", f"138-{digits[:4]}-{digits[4:]}"
        else:
            email, phone = f"User{i}@Example.com ", f"139 {digits[:4]} {digits[4:]}"
        cells = {
            "external_id": f"N{i}",
            "name": f"New {i}",
            "email": email,
            "phone": phone,
            "city": "Shanghai",
            "gender": "f" if i % 2 else "m",
            "birth_date": "1990-01-01",
            "signup_at": "2026-03-01",
            "source_channel": "web",
        }
        member_no = [] if not identifiers else ["" if i <= links else f"M{i}"]
        writer.writerow([cells.get(column, "") for column in CUSTOMER_COLUMNS] + member_no)
    return out.getvalue().encode()


def baseline_importer() -> Callable[[io.BytesIO], object] | None:
    """import_customers as it was at BASELINE (its identity step and the importer that calls it), or
    None when git cannot give that code."""
    sources = {}
    for name in ("crm_tags/identity/imports.py", "crm_tags/importers/customers.py"):
        shown = subprocess.run(
            ["git", "show", f"{BASELINE}:{name}"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if shown.returncode != 0:
            print(f"baseline unavailable: {shown.stderr.strip()[:200]}")
            return None
        sources[name] = shown.stdout
    identity = _module("bench_baseline_identity_imports", sources["crm_tags/identity/imports.py"])
    saved = sys.modules.get("crm_tags.identity.imports")
    sys.modules["crm_tags.identity.imports"] = identity  # the old importer imports the old step
    try:
        importer = _module("bench_baseline_customers", sources["crm_tags/importers/customers.py"])
    except ImportError as exc:
        print(f"baseline unavailable: {exc}")
        return None
    finally:
        sys.modules["crm_tags.identity.imports"] = saved
    importer.baseline_identity = identity
    return importer


def _module(name: str, source: str) -> types.ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - the project's own code from git
    sys.modules[name] = module
    return module


@contextlib.contextmanager
def patched(module: object, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def timed_import(run: Callable[[io.BytesIO], object], data: bytes, check: Callable[[], None] | None) -> float:
    """Seconds one import takes, with the checks its commit would run, rolled back after (and checked
    before the rollback)."""
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic():
        run(io.BytesIO(data))
        with connection.cursor() as cursor:  # the checks a commit would run (deferred foreign keys)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        seconds = time.perf_counter() - started
        if check is not None:
            check()
        transaction.set_rollback(True)
    # every variant starts from the same tables: without the dead rows (and index entries) of the last
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM FULL ANALYZE crm_tags_customer, crm_tags_customeridentifier, crm_tags_customermerge"
        )
    return seconds


def checker(rows: int, links: int, base: int) -> Callable[[], None]:
    def check() -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM crm_tags_customer), (SELECT count(*) FROM crm_tags_customermerge), "
                "(SELECT count(*) FROM crm_tags_customeridentifier i JOIN crm_tags_customer c ON c.id = i.customer_id "
                " WHERE c.external_id LIKE 'N%%' AND i.kind IN ('email', 'phone', 'member_no'))"
            )
            customers, merges, stored = cursor.fetchone()
        want = (base + rows - links, links, 3 * (rows - links))
        if (customers, merges, stored) != want:
            raise AssertionError(
                f"customers, merges, identifiers: {(customers, merges, stored)}, want {want}"
            )

    return check


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="new rows in the file")
    parser.add_argument("--base", type=int, default=100_000, help="customers already in the database")
    parser.add_argument("--links", type=int, default=100, help="rows that link to (and merge into) the base")
    parser.add_argument("--runs", type=int, default=2, help="rounds; the best of each variant is reported")
    parser.add_argument("--no-baseline", action="store_true", help="skip the code before the set-based step")
    args = parser.parse_args()
    if not 0 <= args.links <= min(args.rows, args.base):
        parser.error("--links must be between 0 and the smaller of --rows and --base")
    bench_database_setup(DB_NAME, redis_db=12)

    from crm_tags import importers
    from crm_tags.importers import customers as customer_importer

    generate(args.base)
    with_ids = customer_file(args.rows, args.links)
    without_ids = customer_file(args.rows, args.links, identifiers=False)
    check = checker(args.rows, args.links, args.base)
    old = None if args.no_baseline else baseline_importer()
    hook = "identity_step"

    def plain(data: io.BytesIO) -> object:
        with patched(customer_importer, hook, lambda *a, **k: None):
            return importers.import_customers(data)

    variants: dict[str, tuple[Callable[[io.BytesIO], object], bytes, Callable[[], None] | None]] = {
        "plain": (plain, with_ids, None),
        "identity": (importers.import_customers, with_ids, check),
        "noid": (importers.import_customers, without_ids, None),
    }
    if old is not None:

        def old_plain(data: io.BytesIO) -> object:
            with patched(old, "staged_identifiers_resolve", lambda *a, **k: None):
                return old.import_customers(data)

        variants["baseline_plain"] = (old_plain, with_ids, None)
        variants["baseline_identity"] = (old.import_customers, with_ids, check)
    from crm_tags.identity import imports as identity_imports

    merging = {"s": 0.0}
    merge = identity_imports._components_merge

    def timed_merge(**kwargs: object) -> None:
        started = time.perf_counter()
        merge(**kwargs)
        merging["s"] += time.perf_counter() - started

    identity_imports._components_merge = timed_merge
    best: dict[str, float] = {}
    merges: list[float] = []
    print(f"start: {load()}")
    for round_no in range(1, args.runs + 1):
        for name, (run, data, verify) in variants.items():
            merging["s"] = 0.0
            seconds = timed_import(run, data, verify)
            if name == "identity":
                merges.append(merging["s"])
            best[name] = min(best.get(name, seconds), seconds)
            print(f"round {round_no} {name}: {seconds:.2f}s ({load()})")
    print(f"end: {load()}")
    figures = {
        "plain_s": best["plain"],
        "identity_s": best["identity"],
        "ratio": best["identity"] / best["plain"],
        "noid_s": best["noid"],
        "merge_s": min(merges),  # of identity_s: customers_merge for the linked rows, pair by pair
    }
    if old is not None:
        figures |= {
            "baseline_plain_s": best["baseline_plain"],
            "baseline_identity_s": best["baseline_identity"],
            "baseline_ratio": best["baseline_identity"] / best["baseline_plain"],
        }
    print(
        " ".join(f"{k}={v:.2f}" for k, v in figures.items())
        + f" rows={args.rows} base={args.base} links={args.links}"
    )


if __name__ == "__main__":
    main()
