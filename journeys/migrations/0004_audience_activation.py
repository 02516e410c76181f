# Audience activation (docs/journeys.md, "Audience activation"): its own operations only.
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0003_dry_run"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='destination',
            name='personal_fields',
            field=models.JSONField(blank=True, default=list, verbose_name='personal fields sent'),
        ),
        migrations.CreateModel(
            name='ActivationSchedule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('mode', models.CharField(choices=[('delta', 'Delta (entered / exited)'), ('snapshot', 'Full snapshot')], default='delta', max_length=10, verbose_name='mode')),
                ('purpose', models.CharField(blank=True, default='', max_length=32, verbose_name='consent purpose')),
                ('cadence', models.CharField(choices=[('after_build', 'After each build'), ('hourly', 'Hourly'), ('daily', 'Daily')], max_length=12, verbose_name='cadence')),
                ('at', models.TimeField(blank=True, null=True, verbose_name='at')),
                ('enabled', models.BooleanField(default=True, verbose_name='enabled')),
                ('last_run_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('campaign', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='campaigns.campaign', verbose_name='campaign')),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('destination', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='schedules', to='journeys.destination', verbose_name='destination')),
                ('tag', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm_tags.tag', verbose_name='tag')),
            ],
            options={
                'verbose_name': 'activation schedule',
                'verbose_name_plural': 'activation schedules',
                'ordering': ['destination', 'id'],
            },
        ),
        migrations.CreateModel(
            name='SyncBaseline',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('audience', models.CharField(max_length=80)),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm_tags.customer')),
                ('destination', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='journeys.destination')),
            ],
        ),
        migrations.CreateModel(
            name='SyncRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('audience', models.CharField(max_length=80)),
                ('audience_label', models.CharField(max_length=200, verbose_name='audience')),
                ('mode', models.CharField(choices=[('delta', 'Delta (entered / exited)'), ('snapshot', 'Full snapshot')], max_length=10, verbose_name='mode')),
                ('purpose', models.CharField(blank=True, default='', max_length=32, verbose_name='consent purpose')),
                ('origin', models.CharField(choices=[('api', 'API'), ('page', 'Page'), ('schedule', 'Schedule'), ('build', 'After a build')], default='api', max_length=10, verbose_name='origin')),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('done', 'Done'), ('failed', 'Failed')], default='queued', max_length=10, verbose_name='status')),
                ('staged', models.BooleanField(default=False)),
                ('attempts', models.PositiveIntegerField(default=0, verbose_name='attempts')),
                ('members', models.PositiveIntegerField(default=0, verbose_name='members')),
                ('entered', models.PositiveIntegerField(default=0, verbose_name='entered')),
                ('exited', models.PositiveIntegerField(default=0, verbose_name='exited')),
                ('sent', models.PositiveIntegerField(default=0, verbose_name='sent')),
                ('skipped', models.PositiveIntegerField(default=0, verbose_name='skipped')),
                ('batches', models.PositiveIntegerField(default=0, verbose_name='batches')),
                ('seconds', models.FloatField(blank=True, null=True, verbose_name='duration (s)')),
                ('error', models.CharField(blank=True, default='', max_length=500, verbose_name='error')),
                ('file_path', models.CharField(blank=True, default='', max_length=500)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('campaign', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='campaigns.campaign')),
                ('destination', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='syncs', to='journeys.destination', verbose_name='destination')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('schedule', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='runs', to='journeys.activationschedule')),
                ('tag', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='crm_tags.tag')),
            ],
            options={
                'verbose_name': 'audience sync',
                'verbose_name_plural': 'audience syncs',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='SyncMember',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('change', models.CharField(choices=[('member', 'Member'), ('entered', 'Entered'), ('exited', 'Exited')], max_length=8)),
                ('customer', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='crm_tags.customer')),
                ('run', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='journeys.syncrun')),
            ],
        ),
        migrations.CreateModel(
            name='SyncBatch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('idempotency_key', models.CharField(max_length=64, unique=True)),
                ('body', models.TextField()),
                ('items', models.PositiveIntegerField(default=0)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered')], default='pending', max_length=10)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_status', models.PositiveIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, default='', max_length=200)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='requests', to='journeys.syncrun')),
            ],
            options={
                'ordering': ['run', 'number'],
            },
        ),
        migrations.AddIndex(
            model_name='activationschedule',
            index=models.Index(fields=['cadence', 'tag'], name='journeys_schedule_cadence'),
        ),
        migrations.AddConstraint(
            model_name='activationschedule',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('campaign__isnull', True), ('tag__isnull', False)), models.Q(('campaign__isnull', False), ('tag__isnull', True)), _connector='OR'), name='journeys_schedule_one_audience'),
        ),
        migrations.AddConstraint(
            model_name='syncbaseline',
            constraint=models.UniqueConstraint(fields=('destination', 'audience', 'customer'), name='journeys_syncbaseline_member'),
        ),
        migrations.AddIndex(
            model_name='syncrun',
            index=models.Index(fields=['destination', '-created_at'], name='journeys_sync_destination'),
        ),
        migrations.AddIndex(
            model_name='syncrun',
            index=models.Index(fields=['status', '-created_at'], name='journeys_sync_status'),
        ),
        migrations.AddIndex(
            model_name='syncrun',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'running', 'failed'])), fields=['destination', 'audience'], name='journeys_sync_open'),
        ),
        migrations.AddConstraint(
            model_name='syncmember',
            constraint=models.UniqueConstraint(fields=('run', 'customer'), name='journeys_syncmember_once'),
        ),
        migrations.AddConstraint(
            model_name='syncbatch',
            constraint=models.UniqueConstraint(fields=('run', 'number'), name='journeys_syncbatch_number'),
        ),
    ]
