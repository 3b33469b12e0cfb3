"""`tome models`: the models tome knows — provider, context, prices, the key each needs and whether it is set."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Annotated, TypedDict

import typer

from flows.commands.common import run_cli


def register(app: typer.Typer) -> None:
    """Add the ``models`` command to ``app``."""
    app.command("models")(models)


class ModelRow(TypedDict):
    """One line of `tome models` (and one object of its --json)."""

    name: str
    provider: str
    context_tokens: int | None
    price_input: float | None
    price_output: float | None
    currency: str | None
    key_env: str | None
    key_required: bool
    key_set: bool
    default: bool


def model_rows(env: Mapping[str, str] = os.environ) -> list[ModelRow]:
    """One dict per model (configs/models.toml and the user's tome.toml), then the offline extractive backend.

    ``key_set`` says whether the key variable holds a value; the value itself is never read into the output.
    """
    from pipeline.config import load_catalog

    catalog = load_catalog()
    rows: list[ModelRow] = []
    for name, spec in sorted(catalog.models.items(), key=lambda kv: (kv[1].provider, kv[0])):
        provider = catalog.providers.get(spec.provider)
        key_env = provider.api_key_env if provider else None
        rows.append(
            {
                "name": name,
                "provider": spec.provider,
                "context_tokens": spec.context_tokens,
                "price_input": spec.price_input,
                "price_output": spec.price_output,
                "currency": spec.currency,
                "key_env": key_env,
                "key_required": bool(provider.api_key_required) if provider else True,
                "key_set": bool(key_env and env.get(key_env, "").strip()),
                "default": name == catalog.defaults.model,
            }
        )
    rows.append(
        {
            "name": "extractive",
            "provider": "offline",
            "context_tokens": None,
            "price_input": None,
            "price_output": None,
            "currency": None,
            "key_env": None,
            "key_required": False,
            "key_set": False,
            "default": False,
        }
    )
    return rows


def _key_cell(row: ModelRow) -> str:
    if row["key_env"] is None:
        return "-"
    if row["key_set"]:
        return f"{row['key_env']} (set)"
    return f"{row['key_env']} ({'not set' if row['key_required'] else 'optional'})"


def _price_cell(row: ModelRow) -> str:
    price_in, price_out, currency = row["price_input"], row["price_output"], row["currency"]
    if price_in is None or price_out is None or currency is None:
        return "free (offline)"
    from flows.progress import money

    return f"{money(price_in, currency)} / {money(price_out, currency)}"


def models(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """The models tome knows: provider, context window, prices per 1M tokens (in / out), the API key variable
    each needs and whether it is set (never the key)."""

    def body() -> None:
        from flows.tables import text_table

        rows = model_rows()
        if as_json:
            for row in rows:
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        table = [
            [
                row["name"] + (" *" if row["default"] else ""),
                row["provider"],
                f"{row['context_tokens']:,}" if row["context_tokens"] else "-",
                _price_cell(row),
                _key_cell(row),
            ]
            for row in rows
        ]
        head = ["model", "provider", "context", "price in / out per 1M", "key"]
        sys.stdout.write(text_table(head, table, right={2}))
        sys.stdout.write("* the default model. Add models in tome.toml ([models.\"name\"], see README).\n")

    run_cli(body)
