from tests.metrics.conftest import history  # noqa: F401  (small order histories in local time)
