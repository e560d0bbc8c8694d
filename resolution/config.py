"""Settings of blocking, the match model and clustering, loaded from conf/ by `jobs.config`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from resolution.fellegi_sunter import Comparison

# Attributes the blocking step extracts (see `resolution.blocking.extract_blocking_keys`): the
# exact standardised values every account holds, and keys built for fuzzy blocking rules.
EXACT_ATTRIBUTES = (
    "phone",
    "email",
    "id_number",
    "name",
    "birth_date",
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
# Fuzzy rules: `id_number_one_edit` blocks on the keyed symmetric-deletion hashes of identity
# numbers (one typo apart); `name_in_city` on the Soundex codes of the name tokens within a city;
# `name_birth_date` on the Soundex name codes with the birth date.
FUZZY_RULES = ("id_number_one_edit", "name_in_city", "name_birth_date")
# The exact attributes each fuzzy rule looks at.
RULE_ATTRIBUTES = {
    "id_number_one_edit": ("id_number",),
    "name_in_city": ("name",),
    "name_birth_date": ("name", "birth_date"),
}


def rule_attributes(rule: str) -> tuple[str, ...]:
    """The exact attributes a blocking rule looks at (itself for an exact one)."""
    return RULE_ATTRIBUTES.get(rule, (rule,))


ATTRIBUTES = EXACT_ATTRIBUTES + FUZZY_RULES

CLUSTERING_ENGINES = ("graphframes", "graphx")
GRAPHFRAMES_ALGORITHMS = ("two_phase", "randomized_contraction", "graphx")


@dataclass(frozen=True)
class BlockingConfig:
    """Which blocking rules make candidate pairs, and the hub cap.

    Each rule is an attribute of `ATTRIBUTES`: two accounts are a candidate pair when they
    share a value (or fuzzy key) of an enabled rule. A value shared by more than
    `max_block_size` accounts is a hub: it is not blocked on and is reported in `hub_values`.
    The cap also bounds the pairs one value can produce (max_block_size * (max_block_size - 1)
    / 2). Hub values still count in comparisons, with the weight of their frequency.
    """

    rules: tuple[str, ...] = ATTRIBUTES
    max_block_size: int = 100

    def problems(self) -> list[str]:
        found = [
            f"blocking.rules: unknown rule {name!r} (known: {', '.join(ATTRIBUTES)})"
            for name in self.rules
            if name not in ATTRIBUTES
        ]
        if not self.rules:
            found.append("blocking.rules: at least one rule is needed")
        if self.max_block_size < 2:
            found.append(f"blocking.max_block_size: must be >= 2, got {self.max_block_size}")
        return found


# kind -> label of its fuzzy levels (see `resolution.comparisons`)
FUZZY_LEVEL_LABELS = {
    "exact": "",
    "name": "similarity",
    "address": "token_jaccard",
    "logistics_address": "best_token_jaccard",
    "identity": "one_edit",
    "phone": "one_edit",
    "ip": "same_network",
}
COMPARISON_KINDS = tuple(FUZZY_LEVEL_LABELS)
# Kinds whose single fuzzy level is a yes/no test rather than a similarity threshold.
SWITCH_KINDS = ("identity", "phone", "ip")


@dataclass(frozen=True)
class ComparisonSpec:
    """One comparison of the model: which evidence, and its levels.

    `kind` picks the evidence (`resolution.comparisons`); `attributes` are the exact attributes
    whose shared values give the exact level (and, with `tf_adjusted`, its term frequency);
    `thresholds` are the lower bounds of the fuzzy similarity levels, loosest first (levels
    1..len(thresholds)); the yes/no kinds (identity, phone, ip) have one fixed fuzzy level
    (one edit apart, same network) and take no thresholds. `ignore_disagreement`: a pair that
    differs here loses nothing for it (nominee accounts differ by design); set it false where
    a difference is evidence against a match.
    """

    name: str = ""
    kind: str = "exact"
    attributes: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    tf_adjusted: bool = True
    ignore_disagreement: bool = True
    frequency_classes: tuple[int, ...] = ()

    @property
    def exact_level(self) -> int:
        """The first exact level (of the commonest values when there are frequency classes)."""
        if self.kind in SWITCH_KINDS:
            return 2
        return len(self.thresholds) + 1

    def exact_labels(self) -> tuple[str, ...]:
        """Labels of the exact levels, commonest values first: one `exact` level, or with
        frequency classes (b1 < ... < bk) `exact h>bk`, `exact h<=bk`, ..., `exact h<=b1`."""
        if not self.frequency_classes:
            return ("exact",)
        bounds = self.frequency_classes
        return (f"exact h>{bounds[-1]}", *(f"exact h<={b}" for b in reversed(bounds)))

    def comparison(self) -> Comparison:
        """The model's view: name and level labels (0 = different ... k = exact)."""
        label = FUZZY_LEVEL_LABELS.get(self.kind, "")
        if self.kind in SWITCH_KINDS:
            fuzzy: tuple[str, ...] = (label,)
        else:
            fuzzy = tuple(f"{label}>={t:g}" for t in self.thresholds)
        return Comparison(
            name=self.name,
            levels=("different", *fuzzy, *self.exact_labels()),
            tf_adjusted=self.tf_adjusted,
            ignore_disagreement=self.ignore_disagreement,
        )

    def problems(self) -> list[str]:
        where = f"model.comparisons.{self.name or '?'}"
        found: list[str] = []
        if not self.name or not self.name.replace("_", "").isalnum():
            found.append(f"{where}.name: use letters, digits and underscores, got {self.name!r}")
        if self.kind not in COMPARISON_KINDS:
            found.append(f"{where}.kind: expected one of {COMPARISON_KINDS}, got {self.kind!r}")
        unknown = [a for a in self.attributes if a not in EXACT_ATTRIBUTES]
        if unknown:
            found.append(
                f"{where}.attributes: unknown {unknown} (known: {', '.join(EXACT_ATTRIBUTES)})"
            )
        if not self.attributes:
            found.append(f"{where}.attributes: at least one is needed")
        if list(self.thresholds) != sorted(set(self.thresholds)):
            found.append(f"{where}.thresholds: must increase strictly, got {list(self.thresholds)}")
        if any(not 0.0 < t < 1.0 for t in self.thresholds):
            found.append(f"{where}.thresholds: each must be in (0, 1), got {list(self.thresholds)}")
        if (self.kind in SWITCH_KINDS or self.kind == "exact") and self.thresholds:
            found.append(f"{where}: kind {self.kind!r} takes no thresholds")
        classes = list(self.frequency_classes)
        if classes != sorted(set(classes)) or any(b < 1 for b in classes):
            found.append(
                f"{where}.frequency_classes: holder counts >= 1, strictly increasing, got {classes}"
            )
        if classes and self.tf_adjusted:
            found.append(
                f"{where}: frequency_classes replace the term-frequency adjustment; "
                "set tf_adjusted: false"
            )
        return found


# Holder-count classes of the exact levels of identifier-like comparisons: a value held by
# 2 accounts, 3-5, 6-20, 21-100 or more each get their own m and u (see ComparisonSpec).
DEFAULT_FREQUENCY_CLASSES = (2, 5, 20, 100)


def _classed(name: str, kind: str, attributes: tuple[str, ...], thresholds=()) -> ComparisonSpec:
    return ComparisonSpec(
        name,
        kind,
        attributes,
        tuple(thresholds),
        tf_adjusted=False,
        frequency_classes=DEFAULT_FREQUENCY_CLASSES,
    )


DEFAULT_COMPARISONS = (
    ComparisonSpec("name", "name", ("name",), (0.7, 0.88)),
    _classed("id_number", "identity", ("id_number",)),
    ComparisonSpec("birth_date", "exact", ("birth_date",)),
    _classed("phone", "phone", ("phone",)),
    _classed("email", "exact", ("email",)),
    _classed("device", "exact", ("device",)),
    _classed("registration_ip", "ip", ("registration_ip",)),
    _classed("registered_address", "address", ("registered_address",), (0.6,)),
    _classed("payment_instrument", "exact", ("card", "bank_account", "alipay", "wallet")),
    _classed("collection_account", "exact", ("payment_other",)),
    _classed(
        "logistics_address",
        "logistics_address",
        ("return_address", "warehouse_address", "ship_from_address"),
        (0.6,),
    ),
    _classed("pickup_point", "exact", ("pickup_address",)),
    _classed("label_phone", "exact", ("contact_phone",)),
)


# EM sessions (as Splink trains): each runs on the candidate pairs found by its blocking rules,
# with the comparisons of those rules' attributes left out (they agree by construction), and
# estimates m of the others; a comparison's m is the mean over the sessions that estimate it.
DEFAULT_TRAINING_SESSIONS = (
    ("card", "bank_account", "alipay", "wallet"),
    ("device", "contact_phone", "return_address", "warehouse_address", "ship_from_address"),
    ("id_number", "id_number_one_edit", "name_birth_date"),
    ("phone", "email", "registered_address"),
)


MODEL_KINDS = ("evidence", "fellegi_sunter")
EVIDENCE_WEIGHTS = {
    "id_number": 15.0,
    "card": 15.0,
    "bank_account": 15.0,
    "alipay": 15.0,
    "wallet": 12.0,
    "phone": 12.0,
    "email": 12.0,
    "payment_other": 4.0,
    "device": 9.0,
    "return_address": 9.0,
    "warehouse_address": 9.0,
    "ship_from_address": 9.0,
    "contact_phone": 9.0,
    "id_number_one_edit": 6.0,
    "name_birth_date": 5.0,
    "name": 2.0,
    "name_in_city": 1.0,
    "pickup_address": 2.0,
    "registration_ip": 2.0,
    "registered_address": 2.0,
}


@dataclass(frozen=True)
class EvidenceConfig:
    """The hand-weighted evidence score: log2 Bayes factors per blocking rule a pair shares.

    match_weight = prior_weight + sum over the rules r the pair shares of (weights[r] -
    frequency_penalty * log2(max(holders - 1, 1))), where holders is how many accounts hold
    the rarest shared value; match_probability = 2^w / (1 + 2^w). Rules missing from
    `weights` count 0.
    """

    prior_weight: float = -3.0
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(EVIDENCE_WEIGHTS))
    frequency_penalty: float = 0.5

    def problems(self) -> list[str]:
        found = [
            f"model.evidence.weights: unknown rule {name!r} (known: {', '.join(ATTRIBUTES)})"
            for name in self.weights
            if name not in ATTRIBUTES
        ]
        if self.frequency_penalty < 0:
            found.append(
                f"model.evidence.frequency_penalty: must be >= 0, got {self.frequency_penalty}"
            )
        return found


TRAINING_KINDS = ("all_pairs", "sessions")


@dataclass(frozen=True)
class ModelConfig:
    """How pairs are scored, and the match threshold.

    `kind: evidence` scores with the hand-set weights of `evidence` (`EvidenceConfig`);
    `kind: fellegi_sunter` with a Fellegi-Sunter model over `comparisons`, trained or loaded.

    Without `load_from`, each run trains. `training: all_pairs` (the default): one EM over
    every pair of accounts, the candidate pairs counted once and the other pairs stood for by
    the `random_pairs` random pairs (`seed`) outside them, each weighing (other pairs) /
    (sampled); m, u and the prior are all estimated, u starting from the random pairs' level
    frequencies and the prior from `initial_prior` times the candidates' share of all pairs.
    `training: sessions` (Splink's way): u from the random pairs, fixed; m by EM in
    `training_sessions` (each over the candidate pairs of a few blocking rules); then the
    prior of two random accounts matching. EM runs at most `em_max_iterations`, until no
    parameter moves more than `em_tolerance`. With `load_from` (a model JSON file written by
    an earlier run, `model.json` among its MLflow artifacts) the run scores with that model and
    trains nothing. A pair is a match when its probability reaches `threshold`.
    """

    kind: str = "evidence"
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    comparisons: tuple[ComparisonSpec, ...] = DEFAULT_COMPARISONS
    training: str = "all_pairs"
    training_sessions: tuple[tuple[str, ...], ...] = DEFAULT_TRAINING_SESSIONS
    threshold: float = 0.9
    load_from: str | None = None
    random_pairs: int = 1_000_000
    seed: int = 42
    u_smoothing: float = 1.0
    em_max_iterations: int = 25
    em_tolerance: float = 1e-4
    initial_prior: float = 0.3

    def problems(self) -> list[str]:
        found: list[str] = []
        if self.kind not in MODEL_KINDS:
            found.append(f"model.kind: expected one of {MODEL_KINDS}, got {self.kind!r}")
        if self.kind == "evidence" and self.load_from is not None:
            found.append("model.load_from: only a fellegi_sunter model is loaded")
        found += self.evidence.problems()
        if self.training not in TRAINING_KINDS:
            found.append(f"model.training: expected one of {TRAINING_KINDS}, got {self.training!r}")
        if not self.comparisons:
            found.append("model.comparisons: at least one comparison is needed")
        names = [spec.name for spec in self.comparisons]
        if len(set(names)) != len(names):
            found.append(f"model.comparisons: names repeat: {names}")
        for spec in self.comparisons:
            found += spec.problems()
        for index, session in enumerate(self.training_sessions):
            unknown = [rule for rule in session if rule not in ATTRIBUTES]
            if unknown or not session:
                found.append(
                    f"model.training_sessions[{index}]: needs known blocking rules, "
                    f"got {list(session)}"
                )
        if not 0.0 < self.threshold < 1.0:
            found.append(f"model.threshold: must be in (0, 1), got {self.threshold}")
        if self.random_pairs < 1000:
            found.append(f"model.random_pairs: must be >= 1000, got {self.random_pairs}")
        if self.u_smoothing < 0:
            found.append(f"model.u_smoothing: must be >= 0, got {self.u_smoothing}")
        if self.em_max_iterations < 1:
            found.append(f"model.em_max_iterations: must be >= 1, got {self.em_max_iterations}")
        if not self.em_tolerance > 0:
            found.append(f"model.em_tolerance: must be > 0, got {self.em_tolerance}")
        if not 0.0 < self.initial_prior < 1.0:
            found.append(f"model.initial_prior: must be in (0, 1), got {self.initial_prior}")
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
    model: ModelConfig = field(default_factory=ModelConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)

    def problems(self) -> list[str]:
        return self.blocking.problems() + self.model.problems() + self.clustering.problems()
