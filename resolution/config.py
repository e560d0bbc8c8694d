"""Settings of blocking, scoring and clustering, loaded from conf/ by `jobs.config`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Attribute kinds the blocking step can emit (see `resolution.blocking.extract_blocking_keys`).
ATTRIBUTES = (
    "phone",
    "email",
    "id_number",
    "card",
    "bank_account",
    "alipay",
    "wallet",
    "payment_other",
    "device",
    "registration_ip",
    "registered_address",
    "ship_from_address",
    "return_address",
    "warehouse_address",
    "pickup_address",
    "contact_phone",
)

CLUSTERING_ENGINES = ("graphframes", "graphx")
GRAPHFRAMES_ALGORITHMS = ("two_phase", "randomized_contraction", "graphx")


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class BlockingConfig:
    """Which standardised attributes are blocked on, and the hub cap.

    A value shared by more than `max_block_size` accounts is a hub: it is not blocked on and is
    reported in `hub_values`. The cap also bounds the pairs one value can produce
    (max_block_size * (max_block_size - 1) / 2).
    """

    attributes: tuple[str, ...] = ATTRIBUTES
    max_block_size: int = 100

    def problems(self) -> list[str]:
        found = [
            f"blocking.attributes: unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})"
            for name in self.attributes
            if name not in ATTRIBUTES
        ]
        if not self.attributes:
            found.append("blocking.attributes: at least one attribute is needed")
        if self.max_block_size < 2:
            found.append(f"blocking.max_block_size: must be >= 2, got {self.max_block_size}")
        return found


@dataclass(frozen=True)
class ScoringConfig:
    """An evidence-weighted score: log2 Bayes factors per shared attribute kind.

    match_weight = prior_weight + sum over the attribute kinds a the pair shares of
    (weights[a] - frequency_penalty * log2(max(holders - 1, 1))), where holders is how many
    accounts hold the shared value; match_probability = 2^w / (1 + 2^w). A pair is accepted
    when its probability is at least `threshold`. Attributes missing from `weights` count 0.
    """

    prior_weight: float = -3.0
    weights: Mapping[str, float] = field(default_factory=lambda: _frozen({}))
    frequency_penalty: float = 1.0
    threshold: float = 0.9

    def problems(self) -> list[str]:
        found = [
            f"scoring.weights: unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)})"
            for name in self.weights
            if name not in ATTRIBUTES
        ]
        if self.frequency_penalty < 0:
            found.append(f"scoring.frequency_penalty: must be >= 0, got {self.frequency_penalty}")
        if not 0.0 < self.threshold < 1.0:
            found.append(f"scoring.threshold: must be in (0, 1), got {self.threshold}")
        return found


@dataclass(frozen=True)
class ClusteringConfig:
    """Connected components over accepted edges.

    `engine`: `graphframes` runs `GraphFrame.connectedComponents` (needs the GraphFrames jar on
    the classpath, e.g. `spark-submit --packages io.graphframes:graphframes-spark4_2.13:0.12.3`);
    `graphx` runs Spark GraphX's `ConnectedComponents` (its jar ships with Spark) through the
    project's small JVM adapter in `.jars/seller-er-graphx.jar`. Both label a component with its
    smallest vertex id. The other settings are GraphFrames' own parameters, passed explicitly;
    `max_iterations` bounds GraphX's Pregel supersteps.
    """

    engine: str = "graphx"
    algorithm: str = "two_phase"
    checkpoint_interval: int = 2
    broadcast_threshold: int = -1
    max_iterations: int = 1000
    storage_level: str = "MEMORY_AND_DISK"

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.engine not in CLUSTERING_ENGINES:
            found.append(
                f"clustering.engine: expected one of {CLUSTERING_ENGINES}, got {self.engine!r}"
            )
        if self.algorithm not in GRAPHFRAMES_ALGORITHMS:
            found.append(
                f"clustering.algorithm: expected one of {GRAPHFRAMES_ALGORITHMS}, "
                f"got {self.algorithm!r}"
            )
        if self.checkpoint_interval < 1:
            found.append(
                f"clustering.checkpoint_interval: must be >= 1, got {self.checkpoint_interval}"
            )
        if self.max_iterations < 1:
            found.append(f"clustering.max_iterations: must be >= 1, got {self.max_iterations}")
        return found


@dataclass(frozen=True)
class ResolutionConfig:
    """Everything the pure `resolve(...)` pipeline needs."""

    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)

    def problems(self) -> list[str]:
        return self.blocking.problems() + self.scoring.problems() + self.clustering.problems()
