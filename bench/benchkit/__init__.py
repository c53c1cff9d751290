"""Pieces of the benchmark shared by every system under test.

This package depends on the standard library only (``filler`` also needs Django),
so that it can be imported from our virtualenv and from the peers' virtualenvs
alike. It is put on ``sys.path`` through ``PYTHONPATH=<repo>/bench``.
"""
