# Plan sign-offs and milestones (issue 21): this work's own operations only.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_notification_kind_params"),
        ("tickets", "0011_routing_request_types"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PlanMilestone',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('name', models.CharField(max_length=60, verbose_name='name')),
                ('due', models.DateField(verbose_name='due date')),
                ('done', models.BooleanField(default=False, verbose_name='done')),
                ('done_at', models.DateTimeField(blank=True, null=True, verbose_name='done at')),
                ('done_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('plan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='milestone_rows', to='tickets.solutionplan')),
            ],
            options={
                'verbose_name': 'milestone',
                'verbose_name_plural': 'milestones',
                'ordering': ['plan', 'position', 'id'],
            },
        ),
        migrations.CreateModel(
            name='MilestoneReminder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('due', models.DateField()),
                ('sent_at', models.DateTimeField(auto_now_add=True)),
                ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('milestone', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reminders', to='tickets.planmilestone')),
            ],
        ),
        migrations.CreateModel(
            name='PlanSignoff',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('revision', models.PositiveIntegerField(verbose_name='revision')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                ('role', models.CharField(blank=True, choices=[('manager', 'Manager'), ('agent', 'Support agent'), ('admin', 'Administrator (IT)')], max_length=20, verbose_name='role')),
                ('decision', models.CharField(choices=[('pending', 'Waiting'), ('approved', 'Approved'), ('returned', 'Sent back')], default='pending', max_length=10, verbose_name='decision')),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('note', models.TextField(blank=True, verbose_name='note')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('plan', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='signoffs', to='tickets.solutionplan')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.team', verbose_name='team')),
            ],
            options={
                'verbose_name': 'plan sign-off',
                'verbose_name_plural': 'plan sign-offs',
                'ordering': ['plan', 'revision', 'position', 'id'],
            },
        ),
        migrations.CreateModel(
            name='SignoffDefault',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('ticket_type', models.CharField(blank=True, choices=[('system_config', 'System configuration'), ('data_support', 'Data support'), ('incident', 'Incident'), ('feature', 'Feature'), ('consultation', 'Consultation')], max_length=20, verbose_name='type')),
                ('position', models.PositiveSmallIntegerField(default=0, verbose_name='order')),
                ('role', models.CharField(blank=True, choices=[('manager', 'Manager'), ('agent', 'Support agent'), ('admin', 'Administrator (IT)')], max_length=20, verbose_name='role')),
                ('signer_team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.team', verbose_name='signing team')),
                ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.team', verbose_name='requesting team')),
            ],
            options={
                'verbose_name': 'default plan sign-off',
                'verbose_name_plural': 'default plan sign-offs',
                'ordering': ['team', 'ticket_type', 'position', 'id'],
            },
        ),
        migrations.AddIndex(
            model_name='planmilestone',
            index=models.Index(condition=models.Q(('done', False)), fields=['due', 'plan'], name='plan_milestone_open_due'),
        ),
        migrations.AddConstraint(
            model_name='milestonereminder',
            constraint=models.UniqueConstraint(fields=('milestone', 'due'), name='milestone_reminder_once'),
        ),
        migrations.AddIndex(
            model_name='plansignoff',
            index=models.Index(fields=['decision', 'role', 'team'], name='plan_signoff_waiting'),
        ),
        migrations.AddConstraint(
            model_name='plansignoff',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('role', ''), ('team__isnull', False)), models.Q(models.Q(('role', ''), _negated=True), ('team__isnull', True)), _connector='OR'), name='plan_signoff_role_or_team'),
        ),
        migrations.AddConstraint(
            model_name='plansignoff',
            constraint=models.UniqueConstraint(fields=('plan', 'revision', 'position'), name='plan_signoff_position'),
        ),
        migrations.AddConstraint(
            model_name='plansignoff',
            constraint=models.UniqueConstraint(condition=models.Q(('decided_by__isnull', False)), fields=('plan', 'revision', 'decided_by'), name='plan_signoff_once_per_person'),
        ),
        migrations.AddConstraint(
            model_name='signoffdefault',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('role', ''), ('signer_team__isnull', False)), models.Q(models.Q(('role', ''), _negated=True), ('signer_team__isnull', True)), _connector='OR'), name='signoff_default_role_or_team'),
        ),
    ]
