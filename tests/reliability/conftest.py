"""The reliability cases: the integration tests' per-test connections, and one fork server per session."""

import pytest

from tests.integration.conftest import connections  # noqa: F401
from tests.reliability.scenario import Workers


@pytest.fixture(scope="session")
def workers():
    """The fork server that runs each stage in a worker of its own."""
    server = Workers()
    try:
        yield server
    finally:
        server.close()
