"""Local servers state their window their own way; tome reads it, prefers it to tome.toml, and needs no entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import load_catalog
from pipeline.errors import ConfigError
from pipeline.llm.probe import ServerModels, probe_server, server_root
from pipeline.local_models import with_server_window
from pipeline.testing import MoonshotTestServer
from tests.conftest import free_port


def _local(
    factory: Callable[..., MoonshotTestServer], flavour: str, models: dict[str, int]
) -> MoonshotTestServer:
    return factory(keys=(), models=models, flavour=flavour)


@pytest.mark.parametrize(
    ("flavour", "source"),
    [("vllm", "max_model_len"), ("llama-server", "/props"), ("ollama", "/api/show")],
)
def test_probe_reads_the_window_where_each_server_states_it(
    moonshot_server_factory: Callable[..., MoonshotTestServer], flavour: str, source: str
) -> None:
    srv = _local(moonshot_server_factory, flavour, {"smollm2": 3072})
    info = probe_server(srv.base_url, "smollm2")
    assert info.window == 3072
    assert source in info.source
    assert info.serves("smollm2")
    assert not info.serves("qwen")


def test_probe_of_a_server_that_states_no_window(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
) -> None:
    srv = _local(moonshot_server_factory, "llama-cpp-python", {"smollm2": 2048})
    info = probe_server(srv.base_url, "smollm2")
    assert (info.models, info.window) == (("smollm2",), None)


def test_probe_of_a_dead_server_knows_nothing() -> None:
    info = probe_server(f"http://127.0.0.1:{free_port()}/v1", "smollm2", timeout_s=1.0)
    assert (info.models, info.window) == (None, None)


def test_server_root_drops_v1() -> None:
    assert server_root("http://127.0.0.1:8080/v1/") == "http://127.0.0.1:8080"
    assert server_root("http://127.0.0.1:11434") == "http://127.0.0.1:11434"


def _write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "tome.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TOME_CONFIG", str(path))


def test_the_servers_window_wins_over_tome_toml_with_a_warning(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _write_config(tmp_path, monkeypatch, '[models."smollm2"]\nprovider = "local"\ncontext_tokens = 8192\n')
    srv = _local(moonshot_server_factory, "llama-server", {"smollm2": 2048})
    with caplog.at_level(logging.WARNING, logger="tome.config"):
        catalog = with_server_window(load_catalog(), provider="local", model="smollm2", base_url=srv.base_url)
    assert catalog.model("smollm2").context_tokens == 2048
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "8192" in warnings[0] and "2048" in warnings[0] and srv.base_url in warnings[0]


def test_a_served_model_needs_no_entry(moonshot_server_factory: Callable[..., MoonshotTestServer]) -> None:
    srv = _local(moonshot_server_factory, "vllm", {"Qwen/Qwen2.5-0.5B-Instruct": 32768})
    catalog = load_catalog()
    assert "Qwen/Qwen2.5-0.5B-Instruct" not in catalog.models
    served = with_server_window(
        catalog, provider="local", model="Qwen/Qwen2.5-0.5B-Instruct", base_url=srv.base_url
    )
    spec = served.model("Qwen/Qwen2.5-0.5B-Instruct")
    template = catalog.model("local")
    assert (spec.provider, spec.context_tokens) == ("local", 32768)
    assert (spec.encoding, spec.safety_margin_tokens) == (template.encoding, template.safety_margin_tokens)


def test_a_served_model_without_a_stated_window_says_how_to_declare_it(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
) -> None:
    srv = _local(moonshot_server_factory, "llama-cpp-python", {"smollm2": 2048})
    with pytest.raises(ConfigError) as info:
        with_server_window(load_catalog(), provider="local", model="smollm2", base_url=srv.base_url)
    message = str(info.value)
    assert "\n" not in message
    assert '[models."smollm2"]' in message and "context_tokens" in message and "tome.toml" in message


def test_a_model_the_server_does_not_serve_names_what_it_serves(
    moonshot_server_factory: Callable[..., MoonshotTestServer],
) -> None:
    srv = _local(moonshot_server_factory, "ollama", {"smollm2": 2048, "qwen2.5": 4096})
    with pytest.raises(ConfigError) as info:
        with_server_window(load_catalog(), provider="local", model="llama3", base_url=srv.base_url)
    message = str(info.value)
    assert "smollm2:latest" in message and "qwen2.5:latest" in message and '[models."llama3"]' in message


def test_hosted_providers_are_not_asked() -> None:
    def refuse(url: str, model: str) -> ServerModels:
        raise AssertionError(f"asked {url} about {model}")

    catalog = load_catalog()
    assert with_server_window(catalog, provider="moonshot", model="moonshot-v1-8k", probe=refuse) is catalog


def test_unknown_model_error_says_how_to_declare_it() -> None:
    with pytest.raises(ConfigError) as info:
        load_catalog().model("my-finetune")
    assert '[models."my-finetune"]' in str(info.value) and "tome.toml" in str(info.value)
