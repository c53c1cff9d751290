"""The test settings without ``LOGGING``: a project that configured no logging at all."""

from testsettings import *  # noqa: F403

del LOGGING  # noqa: F821
