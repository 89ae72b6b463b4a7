"""The integration tests' per-test connections serve the reliability cases too."""

from tests.integration.conftest import connections  # noqa: F401
