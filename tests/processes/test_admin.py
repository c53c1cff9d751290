"""The app in a project without the admin, auth or contenttypes apps (a fresh Python process)."""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.processes, pytest.mark.django_line, pytest.mark.django_db]


def test_the_app_works_without_admin_auth_or_contenttypes(tmp_path):
    (tmp_path / "bare_settings.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "x"
            INSTALLED_APPS = ["django_dbq"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            JOBS = {"noop": ["tests.jobs.noop"]}
            USE_TZ = True
            """
        )
    )
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.core.management import call_command
        import django_dbq.admin
        from django_dbq.models import Job
        call_command("check")
        call_command("migrate", verbosity=0)
        print(Job.objects.create(name="noop").state)
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bare_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NEW")
