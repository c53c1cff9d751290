"""A task module that raises while it is imported (for the system checks' tests)."""

raise RuntimeError("this module cannot be imported")
