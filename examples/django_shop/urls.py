"""The shop's own pages: one, listing the returns the handlers recorded."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from .returns.models import ReturnRecord


def returns(request: HttpRequest) -> JsonResponse:
    rows = ReturnRecord.objects.order_by("id").values_list("return_id", "status")
    return JsonResponse({"returns": [list(row) for row in rows]})


urlpatterns = [path("returns/", returns)]
