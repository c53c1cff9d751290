"""The view that serves the database's gauges to Prometheus, protected like the admin.

::

    # urls.py
    from django_dbq.metrics.views import metrics

    urlpatterns = [path("dbq/metrics", metrics)]

Only logged-in staff with the ``django_dbq.view_job`` permission may read it (as in the
admin); a scraper logs in with a session, or you wrap :func:`metrics_response` in a view
of your own with the protection you use (a token, a private port).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .gauges import QueueGauges


def metrics_response(using: str = "default") -> HttpResponse:
    """The gauges of database ``using`` in Prometheus' text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueGauges(using))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not (user.is_active and user.is_staff and user.has_perm("django_dbq.view_job")):
        raise PermissionDenied("The queue's metrics are for staff who may view jobs.")
    return metrics_response()
