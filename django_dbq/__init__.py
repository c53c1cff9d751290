"""django_dbq: a database-backed job queue for Django."""

__version__ = "4.0.0"
