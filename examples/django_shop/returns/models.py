"""What the handlers write: one row per return, its latest status."""

from __future__ import annotations

from django.db import models


class ReturnRecord(models.Model):
    return_id = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=50, blank=True)

    class Meta:
        app_label = "shop_returns"
