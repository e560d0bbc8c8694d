"""Config loading: the default file is valid; every problem is reported at once."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from jobs import resolve_entities
from jobs.config import DEFAULT_CONFIG, PRETRAINED_MODEL, JobConfig, load_config, parse_config
from jobs.quality import DEFAULT_SEVERITIES, QualityConfig
from resolution.config import ATTRIBUTES, LeadsConfig, ModelConfig, NetworkConfig
from resolution.errors import ConfigError
from resolution.fellegi_sunter import FellegiSunterModel
from resolution.pipeline import small_population_model

load_pretrained = resolve_entities.load_pretrained


def test_default_config_loads_typed_and_frozen() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert isinstance(config, JobConfig)
    assert config.resolution.blocking.max_block_size == 100
    assert set(config.resolution.blocking.rules) == set(ATTRIBUTES) - {"birth_date"}
    assert config.resolution.clustering.engine == "graphx"
    # the file spells out the defaults of the code
    assert config.resolution.model == ModelConfig()
    assert config.resolution.network == NetworkConfig()
    assert config.resolution.leads == LeadsConfig()
    assert config.spark.options["spark.sql.adaptive.enabled"] is True
    with pytest.raises(TypeError):
        config.spark.options["spark.sql.adaptive.enabled"] = False  # type: ignore[index]


def test_large_data_config_changes_only_spark_sizing() -> None:
    default = load_config(DEFAULT_CONFIG)
    large = load_config(DEFAULT_CONFIG.parent / "large.yaml")
    assert large.spark.shuffle_partitions > default.spark.shuffle_partitions
    assert large.spark.options["spark.driver.memory"] == "12g"
    assert large.resolution == default.resolution
    assert large.quality == default.quality


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "spark": {"shuffle_partitions": "eight", "typo": 1},
        "resolution": {
            "blocking": {"max_block_size": 1, "rules": ["phone", "shoe_size"]},
            "model": {"threshold": "high", "comparisons": [{"name": "x", "thresholds": "a"}]},
            "clustering": {"engine": "networkx"},
        },
        "surprise": {},
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw, source="bad.yaml")
    message = str(error.value)
    for expected in (
        "bad.yaml",
        "spark.shuffle_partitions: expected int, got 'eight'",
        "spark.typo: unknown setting",
        "surprise: unknown setting",
        "resolution.model.threshold: expected float, got 'high'",
        "resolution.model.comparisons[0].thresholds: expected a list, got 'a'",
    ):
        assert expected in message


def test_value_problems_are_listed_together() -> None:
    raw = {
        "resolution": {
            "blocking": {
                "max_block_size": 1,
                "rules": ["phone", "shoe_size"],
                "broadcast_touched_accounts": -1,
                "broadcast_region_accounts": -2,
                "incremental_rescore": "everyone",
                "hub_share": 0,
                "min_hub_size": 1,
            },
            "model": {
                "threshold": 1.5,
                "min_training_accounts": -1,
                "pretrained": "elsewhere.json",
                "comparisons": [{"name": "x", "kind": "exact", "attributes": ["shoe"]}],
            },
            "clustering": {"engine": "networkx", "checkpoint_interval": 0},
        }
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    message = str(error.value)
    for expected in (
        "blocking.rules: unknown rule 'shoe_size'",
        "blocking.max_block_size: must be >= 2, got 1",
        "blocking.broadcast_touched_accounts: must be >= 0, got -1",
        "blocking.broadcast_region_accounts: must be >= 0, got -2",
        "blocking.incremental_rescore: must be one of touched, holders, got 'everyone'",
        "blocking.hub_share: must be in (0, 1] or null, got 0",
        "blocking.min_hub_size: must be >= 2, got 1",
        "model.threshold: must be in (0, 1), got 1.5",
        "model.min_training_accounts: must be >= 0, got -1",
        "model.pretrained: only a fellegi_sunter model is loaded",
        "model.comparisons.x.attributes: unknown ['shoe']",
        "clustering.engine: expected one of ('graphframes', 'graphx'), got 'networkx'",
        "clustering.checkpoint_interval: must be >= 1, got 0",
    ):
        assert expected in message


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("spark: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_a_file_extends_another(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        "spark: {shuffle_partitions: 4, options: {a.b: 1}}\n"
        "resolution: {blocking: {max_block_size: 50, rules: [phone, email]}}\n",
        encoding="utf-8",
    )
    child = tmp_path / "child.yaml"
    child.write_text(
        "extends: base.yaml\nspark: {options: {c.d: 2}}\nresolution: {blocking: {rules: [card]}}\n",
        encoding="utf-8",
    )
    config = load_config(child)
    assert config.spark.shuffle_partitions == 4
    assert dict(config.spark.options) == {"a.b": 1, "c.d": 2}
    assert config.resolution.blocking.max_block_size == 50
    assert config.resolution.blocking.rules == ("card",)  # lists are replaced, not merged
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="goes round in a circle"):
        load_config(loop)
    with pytest.raises(ConfigError, match="config file not found"):
        child.write_text("extends: nowhere.yaml\n", encoding="utf-8")
        load_config(child)


def test_every_quality_check_and_its_severity_is_set_in_conf() -> None:
    # conf/default.yaml lists each check the code runs with the code's default severity, so
    # the file documents them all and editing one line there changes one check.
    for path in (DEFAULT_CONFIG, DEFAULT_CONFIG.parent / "local.yaml"):
        quality = load_config(path).quality
        assert dict(quality.severities) == dict(DEFAULT_SEVERITIES)
        assert quality.data_docs is True
    assert load_config(DEFAULT_CONFIG).quality == QualityConfig(severities=DEFAULT_SEVERITIES)


def test_data_docs_switch_is_read_from_yaml(tmp_path: Path) -> None:
    off = tmp_path / "off.yaml"
    off.write_text(
        f"extends: {DEFAULT_CONFIG}\nquality:\n  data_docs: false\n"
        "  severities: {match_edges.pair_unique: fail}\n",
        encoding="utf-8",
    )
    quality = load_config(off).quality
    assert quality.data_docs is False
    assert quality.severity_of("match_edges.pair_unique") == "fail"  # one line, one check
    assert quality.severity_of("match_edges.ordered_pair") == "fail"
    assert quality.severity_of("entities.account_count_below_max") == "warn"
    with pytest.raises(ConfigError, match="quality.data_docs: expected true or false, got 'yes'"):
        parse_config({"quality": {"data_docs": "yes"}})


def test_a_small_population_is_scored_with_the_pretrained_model_when_it_fits() -> None:
    """Under model.min_training_accounts the shipped model (it has the default comparisons)
    stands in for training; from that size up, or when the comparisons differ, None: train."""
    model = FellegiSunterModel.from_dict(json.loads(PRETRAINED_MODEL.read_text(encoding="utf-8")))
    config = ModelConfig(kind="fellegi_sunter")
    assert small_population_model(1_500, model, config) is model
    assert small_population_model(4_999, model, config) is model
    assert small_population_model(5_000, model, config) is None
    assert small_population_model(1_500, None, config) is None
    fewer = replace(config, comparisons=config.comparisons[:-1])
    assert small_population_model(1_500, model, fewer) is None


def test_the_pretrained_model_is_the_shipped_one_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """null model.pretrained reads the shipped model, or warns and gives None (train) when the
    job runs from a copy without it; a set path that is missing is a config error."""
    shipped = load_pretrained(None)
    assert shipped is not None
    assert shipped.to_dict() == json.loads(PRETRAINED_MODEL.read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match="model.pretrained: .*nowhere.json: no such file"):
        load_pretrained(str(tmp_path / "nowhere.json"))
    monkeypatch.setattr(resolve_entities, "PRETRAINED_MODEL", tmp_path / "gone.json")
    assert load_pretrained(None) is None


def test_an_incremental_run_continues_with_its_base_model_only_while_it_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The base run's model when its comparisons are the configured ones; None (resolve in
    full, and train) when the base run saved none or the comparisons changed since; a pinned
    model.load_from is taken as set (a misfit is then the config error of any run)."""
    config = load_config(DEFAULT_CONFIG.parent / "fellegi_sunter.yaml")
    saved = tmp_path / "model.json"
    saved.write_text(PRETRAINED_MODEL.read_text(encoding="utf-8"), encoding="utf-8")
    model = resolve_entities._continued_model(config, "day1", saved)
    assert model is not None
    assert model.to_dict() == json.loads(saved.read_text(encoding="utf-8"))

    assert resolve_entities._continued_model(config, "day1", tmp_path / "none.json") is None
    assert "run day1 left no model" in caplog.text

    settings = config.resolution.model
    changed = replace(
        config,
        resolution=replace(
            config.resolution, model=replace(settings, comparisons=settings.comparisons[:-1])
        ),
    )
    assert resolve_entities._continued_model(changed, "day1", saved) is None
    assert "the model of run day1 does not fit the configured comparisons" in caplog.text
    assert "resolving in full" in caplog.text

    pinned = replace(
        changed,
        resolution=replace(
            changed.resolution, model=replace(changed.resolution.model, load_from=str(saved))
        ),
    )
    assert resolve_entities._continued_model(pinned, "day1", saved) is not None
