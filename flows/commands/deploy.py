"""`tome deploy --pool NAME`: documents as flow runs on a Prefect work pool (see flows/distributed.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.commands.common import run_async, run_cli
from pipeline.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``deploy`` command to ``app``."""
    app.command("deploy")(deploy)


def deploy(
    pool: Annotated[str, typer.Option("--pool", help="The Prefect work pool (a process pool; created if missing).")],
) -> None:
    """Deploy summarise-document (one run per document) and summarise-distributed (a batch) to a work pool.

    Needs PREFECT_API_URL (a Prefect server every worker reaches). Then on each machine:
    `prefect worker start --pool NAME`, and trigger a folder with
    `prefect deployment run 'summarise-distributed/tome-batch' --param inputs='["/shared/reports"]'`.
    """

    def body() -> None:
        import os

        if not os.environ.get("PREFECT_API_URL"):
            raise ConfigError(
                "Set PREFECT_API_URL to your Prefect server (e.g. http://prefect-host:4200/api): work pools "
                "need a server that every worker reaches."
            )
        from flows.prefect_env import check_prefect_api

        check_prefect_api()
        from flows.distributed import deploy as deploy_flows

        for name in run_async(deploy_flows(pool)):
            typer.echo(f"deployed {name} to work pool {pool}")

    run_cli(body)
