from __future__ import annotations

from django.apps import AppConfig


class ReturnsConfig(AppConfig):
    name = "examples.django_shop.returns"
    label = "shop_returns"
