"""Configs load, resolve and reject bad values with ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_catalog
from pipeline.errors import ConfigError
from pipeline.settings import resolve_settings
from pipeline.tokens import TiktokenCounter, calibrated


def test_catalog_has_moonshot_models_and_both_tier_tables() -> None:
    cat = load_catalog()
    assert cat.model("moonshot-v1-8k").context_tokens == 8192
    assert cat.model("moonshot-v1-128k").context_tokens == 131072
    assert cat.tier("tier0").rpm == 3 and cat.tier("tier0").tpd == 1_500_000
    assert cat.tier("tier0-2024").tpm == 32_000
    assert cat.tier("Tier1").concurrency == 50


def test_unknown_names_raise_config_errors_listing_known_ones() -> None:
    cat = load_catalog()
    with pytest.raises(ConfigError, match="moonshot-v1-8k"):
        cat.model("moonshot-v1-9k")
    with pytest.raises(ConfigError, match="tier0"):
        cat.tier("tier9")
    with pytest.raises(ConfigError, match="short, medium, long"):
        resolve_settings(length="lengthy")
    with pytest.raises(ConfigError, match="context strategy"):
        resolve_settings(context_strategy="everything")


def test_lengths_resolve_from_words_and_numbers() -> None:
    assert resolve_settings(length="short").target_tokens == 250
    assert resolve_settings(length="900").target_tokens == 900
    assert resolve_settings(length=1200).target_tokens == 1200


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    src = Path(__file__).resolve().parents[1] / "configs"
    for f in src.glob("*.toml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "tiers.toml").write_text("[tiers.tier0\nrpm = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_catalog(tmp_path)


def test_token_counting_is_offline_and_calibrated() -> None:
    counter = TiktokenCounter()
    assert counter.count("hello world") == 2
    assert counter.decode(counter.encode("第一回 靈根育孕源流出")) == "第一回 靈根育孕源流出"
    assert calibrated(load_catalog().model("moonshot-v1-8k"), 1000) == 1100


def test_chinese_documents_use_the_models_cjk_calibration() -> None:
    spec = load_catalog().model("moonshot-v1-8k")
    assert spec.for_language("zh").calibration == 0.6
    assert spec.for_language("en") is spec
    assert load_catalog().model("gpt-4o-mini").for_language("zh").calibration == 1.0  # none configured


def test_user_tome_toml_adds_models_and_overrides_defaults_and_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.budget import resolve_limits

    user = tmp_path / "tome.toml"
    user.write_text(
        """
[models."qwen2.5-7b-instruct"]
provider = "local"
context_tokens = 32768
price_input = 0
price_output = 0

[defaults]
model = "qwen2.5-7b-instruct"
provider = "local"
tier = "unlimited"
length = "short"

[limits]
concurrency = 3
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("TOME_CONFIG", str(user))
    settings = resolve_settings()
    assert (settings.model, settings.provider, settings.target_tokens) == ("qwen2.5-7b-instruct", "local", 250)
    assert load_catalog().model("qwen2.5-7b-instruct").context_tokens == 32768
    assert load_catalog().model("moonshot-v1-8k").context_tokens == 8192  # the shipped catalog still there
    assert resolve_limits("unlimited", env={}).concurrency == 3
    assert resolve_limits("unlimited", env={"TOME_CONCURRENCY": "5"}).concurrency == 5  # env beats the file


def test_bad_user_config_is_a_one_line_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "tome.toml"
    user.write_text("[model]\nname = 'x'\n", encoding="utf-8")
    monkeypatch.setenv("TOME_CONFIG", str(user))
    with pytest.raises(ConfigError, match=r"unknown key \[model\]; did you mean .models."):
        load_catalog()
    monkeypatch.setenv("TOME_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_catalog()
