"""Drivers for the peer libraries, each run in its own virtualenv.

These modules are imported top-level (``PYTHONPATH=bench/peers:bench``), never as
``bench.peers``: our ``django_dbq`` package must not be importable from a peer's
process, since django-db-queue 3.x installs a package of the same name.
"""
