"""A local Moonshot-compatible server for tests and benchmarks: real HTTP, real limits, faults on demand."""

from pipeline.testing.gateway import (
    FAULT_KINDS,
    MOONSHOT_MODELS,
    TEST_API_KEY,
    Latency,
    RequestRecord,
    ServerStats,
)
from pipeline.testing.harness import MoonshotTestServer
from pipeline.testing.summariser import Obedience
from pipeline.testing.tokenizer import ServerTokenizer

__all__ = [
    "FAULT_KINDS",
    "MOONSHOT_MODELS",
    "TEST_API_KEY",
    "Latency",
    "MoonshotTestServer",
    "Obedience",
    "RequestRecord",
    "ServerStats",
    "ServerTokenizer",
]
