"""The Moonshot-compatible test server from the command line (the class lives in pipeline.testing.harness).

    python -m pipeline.testing.server --port 8765 --concurrency 8 --rpm 120 --tpm 60000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pipeline.config import RateLimits, load_catalog
from pipeline.testing.gateway import TEST_API_KEY, Latency
from pipeline.testing.harness import MoonshotTestServer

__all__ = ["MoonshotTestServer", "main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.testing.server", description="A local Moonshot-compatible server for tests and benchmarks."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--tier", help="take limits from configs/tiers.toml (flags below override)")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    p.add_argument("--tpd", type=int)
    p.add_argument("--ttft", type=float, default=0.3, help="seconds to first token")
    p.add_argument("--per-token", type=float, default=0.004, help="seconds per output token")
    p.add_argument("--token-scale", type=float, default=1.0)
    p.add_argument("--key", action="append", help=f"accepted API key (repeatable; default {TEST_API_KEY})")
    p.add_argument("--gid-tier", type=int, default=1)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in the foreground until interrupted."""
    args = _parse_args(argv)
    base = load_catalog().tier(args.tier) if args.tier else RateLimits(concurrency=0)
    limits = base.override(concurrency=args.concurrency, rpm=args.rpm, tpm=args.tpm, tpd=args.tpd)
    srv = MoonshotTestServer(
        host=args.host,
        port=args.port,
        limits=limits,
        latency=Latency(args.ttft, args.per_token),
        token_scale=args.token_scale,
        keys=tuple(args.key or (TEST_API_KEY,)),
        gid_tier=args.gid_tier,
    )
    srv.start()
    print(
        f"Moonshot test server on {srv.base_url} (key {srv.api_key}; limits {limits}); Ctrl-C stops it.",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
