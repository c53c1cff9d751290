from django.contrib import admin
from django.urls import path

from django_dbq.metrics.views import metrics

urlpatterns = [path("admin/", admin.site.urls), path("dbq/metrics", metrics)]
