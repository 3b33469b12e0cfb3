"""The process of tome's background Prefect server (``python -m flows.background_app --port N``).

It serves what ``prefect server start`` serves (Prefect's API, UI and services: ``create_app(final=True)`` under
uvicorn, on 127.0.0.1), with one difference: a plain GET of a UI page, such as the flow-run address tome prints,
answers with the page. Prefect sends its single-page UI only to requests that accept HTML (browsers), so
``curl`` or a script checking the address would get 404.
"""

from __future__ import annotations

import argparse

from starlette.types import ASGIApp, Receive, Scope, Send


def is_ui_page(path: str) -> bool:
    """A UI route (``/runs/flow-run/<id>``): not the API, not a static file (those have an extension)."""
    return not (path == "/api" or path.startswith("/api/")) and "." not in path.rsplit("/", 1)[-1]


class PagesForPlainGets:
    """ASGI middleware: GET/HEAD of a UI page is treated as accepting HTML; everything else passes unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and is_ui_page(scope["path"]):
            accept = b", ".join(value for name, value in scope["headers"] if name == b"accept")
            if b"text/html" not in accept:
                others = [(name, value) for name, value in scope["headers"] if name != b"accept"]
                scope = {**scope, "headers": [*others, (b"accept", b"text/html, " + accept if accept else b"text/html")]}
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.background_app", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args(argv).port

    import uvicorn
    from prefect.server.api.server import create_app
    from prefect.settings import (
        PREFECT_SERVER_API_KEEPALIVE_TIMEOUT,
        PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL,
        PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT,
        PREFECT_SERVER_LOGGING_LEVEL,
    )

    # As `prefect server start` runs it in the foreground (prefect/cli/_server_utils.py), settings included.
    uvicorn.run(
        PagesForPlainGets(create_app(final=True)),
        host="127.0.0.1",
        port=port,
        timeout_keep_alive=PREFECT_SERVER_API_KEEPALIVE_TIMEOUT.value(),
        ws_ping_interval=PREFECT_SERVER_API_WEBSOCKET_PING_INTERVAL.value(),
        ws_ping_timeout=PREFECT_SERVER_API_WEBSOCKET_PING_TIMEOUT.value(),
        log_level=PREFECT_SERVER_LOGGING_LEVEL.value().lower(),
    )


if __name__ == "__main__":
    main()
