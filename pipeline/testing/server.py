"""The Moonshot-compatible test server from the command line (the class lives in pipeline.testing.harness).

    python -m pipeline.testing.server --port 8765 --concurrency 8 --rpm 120 --tpm 60000
    python -m pipeline.testing.server --disobedient --token-scale 1.15 --prefix-cache

``TOME_TEST_MODEL=disobedient``, ``TOME_TEST_TOKEN_SCALE`` and ``TOME_TEST_PREFIX_CACHE=1`` set the same
defaults from the environment (benchmark scripts pass them through).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from pipeline.config import RateLimits, load_catalog
from pipeline.testing.gateway import TEST_API_KEY, Latency
from pipeline.testing.harness import MoonshotTestServer
from pipeline.testing.summariser import OBEDIENT, Obedience

MODEL_ENV, SCALE_ENV, CACHE_ENV = "TOME_TEST_MODEL", "TOME_TEST_TOKEN_SCALE", "TOME_TEST_PREFIX_CACHE"

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
    env = os.environ
    p.add_argument(
        "--token-scale",
        type=float,
        default=float(env.get(SCALE_ENV) or 1.0),
        help="the server counts this many times its usual tokens (e.g. 1.15 or 0.85: a tokenizer unlike the "
        f"client's calibration; env {SCALE_ENV})",
    )
    p.add_argument(
        "--disobedient",
        action="store_true",
        default=env.get(MODEL_ENV, "").strip().lower() == "disobedient",
        help=f"the model writes 1.3-2x the length it is asked for (env {MODEL_ENV}=disobedient)",
    )
    p.add_argument(
        "--prefix-cache",
        action="store_true",
        default=env.get(CACHE_ENV, "").strip().lower() in {"1", "true", "yes"},
        help=f"report leading messages seen before as cached tokens (env {CACHE_ENV}=1)",
    )
    p.add_argument("--no-count-endpoint", action="store_true", help="answer the token-count endpoint with 404")
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
        obedience=Obedience.disobedient() if args.disobedient else OBEDIENT,
        prefix_cache=args.prefix_cache,
        count_endpoint=not args.no_count_endpoint,
    )
    srv.start()
    print(
        f"Moonshot test server on {srv.base_url} (key {srv.api_key}; limits {limits}; "
        f"{'disobedient' if args.disobedient else 'obedient'} model, token scale {args.token_scale}); "
        "Ctrl-C stops it.",
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
