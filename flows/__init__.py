"""tome's Prefect flows and the ``tome`` command line; Prefect's settings are applied before it is imported."""

from flows.prefect_env import configure_prefect_env

configure_prefect_env()
