# Chinese words found as substrings: every CJK character and pair of adjacent CJK characters of an
# article, computed by Postgres into a generated array with its GIN indexes; the segmented copies are
# rebuilt with the extended marketing dictionary.

import django.contrib.postgres.fields
import django.contrib.postgres.indexes
from django.db import migrations, models

NGRAMS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION kb_cjk_ngrams(title text, summary text, body text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
-- The planner's guess for generate_series (1,000 rows per run) would make JIT compile this small query.
SET jit = off
AS $$
    SELECT coalesce(array_agg(DISTINCT gram), '{}')
    FROM regexp_matches(title || E'\n' || summary || E'\n' || body, '[\u3400-\u9fff\uf900-\ufaff]+', 'g')
            AS run (chars),
        generate_series(1, char_length(run.chars[1])) AS pos,
        LATERAL (VALUES (substr(run.chars[1], pos, 1)), (substr(run.chars[1], pos, 2))) AS piece (gram)
$$;
"""


def resegment(apps, schema_editor) -> None:
    """The dictionary grew (复购, 获客, 触达, …): cut every article's text again."""
    from knowledge_base.segmentation import segment

    Article = apps.get_model("knowledge_base", "Article")
    batch = []
    for article in Article.objects.only("pk", "title", "summary", "body").iterator(chunk_size=500):
        article.search_title = segment(article.title)
        article.search_summary = segment(article.summary)
        article.search_body = segment(article.body)
        batch.append(article)
        if len(batch) == 500:
            Article.objects.bulk_update(batch, ["search_title", "search_summary", "search_body"])
            batch = []
    if batch:
        Article.objects.bulk_update(batch, ["search_title", "search_summary", "search_body"])


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge_base", "0004_article_lock_version"),
    ]

    operations = [
        migrations.RunSQL(NGRAMS_FUNCTION, "DROP FUNCTION IF EXISTS kb_cjk_ngrams(text, text, text);"),
        migrations.AddField(
            model_name="article",
            name="search_ngrams",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Func(
                    models.F("title"),
                    models.F("summary"),
                    models.F("body"),
                    function="kb_cjk_ngrams",
                    output_field=django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), size=None
                    ),
                ),
                output_field=django.contrib.postgres.fields.ArrayField(
                    base_field=models.TextField(), size=None
                ),
            ),
        ),
        migrations.AddIndex(
            model_name="article",
            index=django.contrib.postgres.indexes.GinIndex(
                fastupdate=False, fields=["search_ngrams"], name="kb_article_ngrams"
            ),
        ),
        migrations.AddIndex(
            model_name="article",
            index=django.contrib.postgres.indexes.GinIndex(
                condition=models.Q(("status", "published")),
                fastupdate=False,
                fields=["search_ngrams"],
                name="kb_article_ngrams_published",
            ),
        ),
        migrations.RunPython(resegment, migrations.RunPython.noop, elidable=True),
    ]
