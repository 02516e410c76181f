"""Benchmark of knowledge-base search: p50/p95 of GET /api/v1/kb/articles/?q=… over generated articles.

    python bench/kb_search.py [--articles 20000] [--requests 200] [--keep]

Runs in its own database (martech_bench_kb, recreated and migrated unless --keep finds it filled).
Half the articles are Chinese, half English: two marketing topic terms each (about 60 terms per
language, so a term is the topic of ~3 % of the articles) in Zipf-distributed filler words. Requests
go through the whole Django stack (test client: auth, search, ranking, snippets, JSON), as a requester
(published only) and as an agent, then as a requester again with the cached search counts dropped
before every request (each one counts its hits). Each run reports wall time, the SQL part, this
process's CPU time per request (time.process_time, which other processes on a shared machine do not
inflate much) and the load average. Ends with one line of name=value pairs.
"""

import argparse
import os
import random
import time
from pathlib import Path

from benchdb import bench_database_setup

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "martech_bench_kb"

ZH_WORDS = (
    "客户 标签 配置 指南 邮件 发送 失败 原因 短信 模板 审核 看板 报表 导出 私域 流量 灰度发布 客单价 复购率 "
    "转化率 优惠券 核销 会员等级 企业微信 社群 直播 大促 双十一 落地页 埋点 归因 预算 投放 渠道 活动 复盘 "
    "工单 需求 数据 规则 人群 预览 发布 权限 登录 小程序 公众号 支付 订单 退款 库存 价格 促销 积分"
).split()
EN_WORDS = (
    "customer tag configure configuration guide email sending failure reason sms template review dashboard "
    "report export private traffic gray release order value repurchase conversion coupon redemption member "
    "level community live stream promotion landing page tracking attribution budget channel campaign "
    "retrospective ticket request data rule audience preview publish permission login payment refund stock "
    "price points segment funnel retention cohort weekly monthly analysis setup issue fix error"
).split()
QUERIES = [
    "标签",
    "邮件发送失败",
    "客户标签配置",
    "灰度发布 标签",
    "CRM 标签",
    "dashboard",
    "configure email",
    "coupon redemption report",
    "私域 客单价",
    "dashbord",
    "看板 export",
    "短信模板审核不通过怎么办",
]


def setup_database(keep: bool) -> None:
    """Own database (recreated unless kept), migrated, Django set up."""
    bench_database_setup(DB_NAME, keep=keep, redis_db=5)


def _vocabularies(rng: random.Random) -> tuple[list[str], list[str]]:
    """Filler words: the 4,000 most frequent Chinese words of jieba's dictionary, and 4,000 made-up
    English-looking words (no word list ships with the machine)."""
    import jieba

    rows = []
    with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as handle:
        for line in handle:
            word, freq, tag = line.split()[:3]
            if len(word) >= 2 and tag in ("n", "v", "vn", "a", "nz"):
                rows.append((int(freq), word))
    zh = [w for _f, w in sorted(rows, reverse=True)[:4000]]
    onsets, vowels, codas = (
        "b c d f g h k l m n p r s t v w".split(),
        "a e i o u ai ea ou".split(),
        "n r s t l ng".split(),
    )
    en: set[str] = set()
    while len(en) < 4000:
        en.add(
            "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 3)))
            + rng.choice(codas)
        )
    return zh, sorted(en)


def _sentence(rng: random.Random, zh: bool, filler: list[str], words: int, topic: list[str] = ()) -> str:
    """Zipf-like choice of filler words (frequent words often, rare words rarely), topic words mixed in."""
    picked = [filler[min(len(filler) - 1, int(rng.paretovariate(1.1)) - 1)] for _ in range(words)]
    for term in topic:
        picked.insert(rng.randint(0, len(picked)), term)
    if zh:
        return "".join(picked) + "。"
    return " ".join(picked).capitalize() + "."


def generate(count: int) -> float:
    """Write `count` articles in batches: each has two topic terms from the marketing vocabulary in its
    title, summary and body, the rest is filler. Paragraphs come from a pool segmented once (jieba cuts at
    sentence ends anyway, so joining segmented paragraphs equals segmenting the joined text)."""
    from accounts.services import user_create
    from knowledge_base.models import Article
    from knowledge_base.segmentation import segment

    agent = user_create(
        username="bench-agent", role="agent", team_name="MarTech support", password="x-bench-1"
    )
    manager = user_create(
        username="bench-boss", role="manager", team_name="MarTech support", password="x-bench-1"
    )
    user_create(username="bench-req", role="requester", team_name="E-commerce ops", password="x-bench-1")
    if Article.objects.count() >= count:
        return 0.0
    rng = random.Random(42)
    zh_filler, en_filler = _vocabularies(rng)
    started = time.perf_counter()
    pools = {}
    for zh, filler in ((True, zh_filler), (False, en_filler)):
        paragraphs = [_sentence(rng, zh, filler, rng.randint(25, 45)) for _ in range(1500)]
        pools[zh] = [(text, segment(text)) for text in paragraphs]
    kinds = Article.Kind.values
    batch: list[Article] = []
    for n in range(count):
        zh = n % 2 == 0
        terms, filler = (ZH_WORDS, zh_filler) if zh else (EN_WORDS, en_filler)
        topic = rng.sample(terms, 2)
        title = _sentence(rng, zh, filler, rng.randint(1, 3), topic).rstrip("。.")
        summary = _sentence(rng, zh, filler, rng.randint(8, 14), topic[:1])
        lead = _sentence(rng, zh, filler, rng.randint(10, 20), topic)
        paragraphs = rng.sample(pools[zh], rng.randint(2, 5))
        published = rng.random() < 0.85
        article = Article(
            title=title[:200],
            summary=summary[:500],
            body="\n\n".join([lead] + [p for p, _s in paragraphs]),
            kind=kinds[n % len(kinds)],
            language="zh-hans" if zh else "en",
            status=Article.Status.PUBLISHED if published else Article.Status.DRAFT,
            owner=agent,
            reviewer=manager if published else None,
            version_number=1,
        )
        article.search_title = segment(article.title)
        article.search_summary = segment(article.summary)
        article.search_body = " ".join([segment(lead)] + [s for _p, s in paragraphs])
        batch.append(article)
        if len(batch) == 2000:
            Article.objects.bulk_create(batch)
            batch = []
    if batch:
        Article.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk load in production: statistics and the visibility map.
        cursor.execute("VACUUM ANALYZE knowledge_base_article")
    return time.perf_counter() - started


class SqlTimer:
    """Time spent in SQL (the database's answer included) and the number of queries, per request:
    a light execute wrapper (no SQL formatting or logging, unlike the debug cursor)."""

    def __init__(self) -> None:
        self.seconds, self.queries = 0.0, 0

    def __call__(self, execute, sql, params, many, context):  # noqa: ANN001 - Django's wrapper signature
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


def backend_cpu_reader():  # noqa: ANN201
    """A function returning the CPU time (ms) the Postgres backend serving this connection has used
    so far (Linux /proc/<pid>/schedstat: nanoseconds on a CPU), or None where that is not readable."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    path = Path(f"/proc/{pid}/schedstat")
    try:
        path.read_text()
    except OSError:
        return None
    return lambda: int(path.read_text().split()[0]) / 1e6


def measure(username: str, requests: int, *, cold_counts: bool = False) -> dict[str, list[float]]:
    """Per request: wall time through the whole stack, the part of it in SQL, the process's CPU time
    (time.process_time: what this process itself computed, whatever other processes take), and
    the number of queries. With cold_counts, the cached search counts are dropped before each
    request (outside the timing): every request counts its hits again."""
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from knowledge_base.search_cache import invalidate_search_counts

    client = Client()
    client.force_login(User.objects.get(username=username))
    for q in QUERIES:  # warm-up: jieba, connection, plan cache, stems
        client.get("/api/v1/kb/articles/", {"q": q})
    backend_cpu = backend_cpu_reader()
    result: dict[str, list[float]] = {"wall": [], "sql": [], "cpu": [], "db_cpu": [], "queries": []}
    for n in range(requests):
        q = QUERIES[n % len(QUERIES)]
        if cold_counts:
            invalidate_search_counts()
        timer = SqlTimer()
        db_before = backend_cpu() if backend_cpu else 0.0
        with connection.execute_wrapper(timer):
            started, cpu = time.perf_counter(), time.process_time()
            response = client.get("/api/v1/kb/articles/", {"q": q})
            result["wall"].append((time.perf_counter() - started) * 1000)
            result["cpu"].append((time.process_time() - cpu) * 1000)
        if backend_cpu:
            result["db_cpu"].append(backend_cpu() - db_before)
        result["sql"].append(timer.seconds * 1000)
        result["queries"].append(timer.queries)
        assert response.status_code == 200, response.content[:200]
    return result


def hit_counts(username: str) -> dict[str, int]:
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    return {q: client.get("/api/v1/kb/articles/", {"q": q}).json()["count"] for q in QUERIES}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="reuse the bench database if it is filled")
    args = parser.parse_args()
    setup_database(args.keep)
    seconds = generate(args.articles)
    print(f"articles: {args.articles} (generated in {seconds:.1f} s)")
    from knowledge_base.search_cache import invalidate_search_counts

    invalidate_search_counts()  # the articles were written in bulk (no save()): counts start afresh
    results = {}
    runs = (
        ("requester", "bench-req", False),
        ("agent", "bench-agent", False),
        ("requester_cold", "bench-req", True),  # every request counts its hits (no cached count)
    )
    for role, username, cold in runs:
        load_before = os.getloadavg()[0]
        m = measure(username, args.requests, cold_counts=cold)
        load_after = os.getloadavg()[0]
        if m["db_cpu"]:
            # The work one request costs, Python and Postgres together, whatever the waiting for a
            # CPU that other processes add: about the wall time on an idle machine.
            m["cpu_total"] = [a + b for a, b in zip(m["cpu"], m["db_cpu"], strict=True)]
        r = {key: (pct(values, 50), pct(values, 95)) for key, values in m.items() if values}
        results[role] = r
        print(
            f"{role}: p50 {r['wall'][0]:.1f} ms  p95 {r['wall'][1]:.1f} ms  "
            f"(SQL p50 {r['sql'][0]:.1f} / p95 {r['sql'][1]:.1f} ms; CPU of this process p50 "
            f"{r['cpu'][0]:.1f} / p95 {r['cpu'][1]:.1f} ms; {r['queries'][0]:.0f}-{max(m['queries']):.0f} "
            f"queries; load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPUs)"
        )
        if "cpu_total" in r:
            print(
                f"    CPU of the Postgres backend p50 {r['db_cpu'][0]:.1f} / p95 {r['db_cpu'][1]:.1f} ms; "
                f"process + backend p50 {r['cpu_total'][0]:.1f} / p95 {r['cpu_total'][1]:.1f} ms"
            )
    for role, username in (("requester", "bench-req"), ("agent", "bench-agent")):
        print(f"  hits ({role}): " + ", ".join(f"{q!r} {c}" for q, c in hit_counts(username).items()))
    summary = [f"articles={args.articles}", f"requests={args.requests}", f"load={os.getloadavg()[0]:.1f}"]
    for role, r in results.items():
        summary += [
            f"{role}_p50_ms={r['wall'][0]:.1f}",
            f"{role}_p95_ms={r['wall'][1]:.1f}",
            f"{role}_sql_p95_ms={r['sql'][1]:.1f}",
            f"{role}_cpu_p50_ms={r['cpu'][0]:.1f}",
            f"{role}_cpu_p95_ms={r['cpu'][1]:.1f}",
        ]
        if "cpu_total" in r:
            summary += [
                f"{role}_cpu_total_p50_ms={r['cpu_total'][0]:.1f}",
                f"{role}_cpu_total_p95_ms={r['cpu_total'][1]:.1f}",
            ]
    print(" ".join(summary))


if __name__ == "__main__":
    main()
