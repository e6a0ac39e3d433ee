from __future__ import annotations

from typing import ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: ClassVar[list[tuple[str, str]]] = []
    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.CreateModel(
            name="ReturnRecord",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("return_id", models.CharField(max_length=200, unique=True)),
                ("status", models.CharField(blank=True, max_length=50)),
            ],
        ),
    ]
