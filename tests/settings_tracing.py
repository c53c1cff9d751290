"""The test settings, with OpenTelemetry's SDK writing each span to DBQ_TEST_SPANS_FILE."""

from tests import tracing_setup
from testsettings import *  # noqa: F403

tracing_setup.install()
