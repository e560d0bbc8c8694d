"""Config loading: the default file is valid; every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.config import DEFAULT_CONFIG, JobConfig, load_config, parse_config
from resolution.config import ATTRIBUTES
from resolution.errors import ConfigError


def test_default_config_loads_typed_and_frozen() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert isinstance(config, JobConfig)
    assert config.resolution.blocking.max_block_size == 100
    assert set(config.resolution.blocking.attributes) == set(ATTRIBUTES)
    assert config.resolution.clustering.engine == "graphx"
    assert config.resolution.scoring.weights["card"] == 15.0
    assert config.spark.options["spark.sql.adaptive.enabled"] is True
    with pytest.raises(TypeError):
        config.resolution.scoring.weights["card"] = 1.0  # type: ignore[index]


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "spark": {"shuffle_partitions": "eight", "typo": 1},
        "resolution": {
            "blocking": {"max_block_size": 1, "attributes": ["phone", "shoe_size"]},
            "scoring": {"threshold": 1.5, "weights": {"card": "heavy"}},
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
        "resolution.scoring.weights.card: expected float, got 'heavy'",
    ):
        assert expected in message


def test_value_problems_are_listed_together() -> None:
    raw = {
        "resolution": {
            "blocking": {"max_block_size": 1, "attributes": ["phone", "shoe_size"]},
            "scoring": {"threshold": 1.5},
            "clustering": {"engine": "networkx", "checkpoint_interval": 0},
        }
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    message = str(error.value)
    for expected in (
        "blocking.attributes: unknown attribute 'shoe_size'",
        "blocking.max_block_size: must be >= 2, got 1",
        "scoring.threshold: must be in (0, 1), got 1.5",
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
