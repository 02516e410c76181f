import hashlib
from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def adopt_legacy_tokens(apps, schema_editor) -> None:
    """DRF's permanent tokens become hashed, expiring ones (same key, so clients keep working)."""
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires = timezone.now() + timedelta(hours=settings.API_TOKEN_TTL_HOURS)
    for legacy in Token.objects.all():
        ApiToken.objects.get_or_create(
            key_hash=hashlib.sha256(legacy.key.encode()).hexdigest(),
            defaults={
                "user_id": legacy.user_id,
                "name": "legacy",
                "scope": "write",
                "prefix": legacy.key[:8],
                "expires_at": expires,
            },
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_outbox'),
        ('authtoken', '0004_alter_tokenproxy_options'),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, max_length=100, verbose_name='name')),
                ('scope', models.CharField(choices=[('read', 'Read only'), ('write', 'Read and write')], default='write', max_length=10, verbose_name='scope')),
                ('key_hash', models.CharField(max_length=64, unique=True)),
                ('prefix', models.CharField(max_length=8)),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created')),
                ('expires_at', models.DateTimeField(verbose_name='expires')),
                ('last_used_at', models.DateTimeField(blank=True, null=True, verbose_name='last used')),
                ('revoked_at', models.DateTimeField(blank=True, null=True, verbose_name='revoked')),
                ('revoke_reason', models.CharField(blank=True, max_length=32)),
                ('revoked_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'API token',
                'verbose_name_plural': 'API tokens',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['user', 'revoked_at', 'expires_at'], name='apitoken_user_active')],
            },
        ),
        migrations.RunPython(adopt_legacy_tokens, migrations.RunPython.noop),
    ]
