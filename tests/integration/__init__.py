"""The integration tier (``-m integration``): real Prefect servers, served deployments, ephemeral start-up."""
