"""``manage.py`` for django-db-queue 3.x (run with its virtualenv's Python)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dbq3_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
