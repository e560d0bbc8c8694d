"""Settings of blocking, the match model and clustering, loaded from conf/ by `jobs.config`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from features import columns as c
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
# What an incremental run scores again: see `BlockingConfig.incremental_rescore`.
INCREMENTAL_RESCORES = ("touched", "holders")

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

    In a small population a hub holds fewer accounts: a value held by more than `hub_share`
    of the accounts is a hub too, though never one held by `min_hub_size` accounts or fewer
    (`hub_cap`). At 1,500 accounts a carrier NAT address is held by about 60 and a
    consolidator's warehouse by 10-40, under 100 but as common, for the population, as
    thousands are at 100,000; from 10,000 accounts up (with the defaults) the cap is
    `max_block_size` alone. null `hub_share`: `max_block_size` at any size.
    """

    rules: tuple[str, ...] = ATTRIBUTES
    max_block_size: int = 100
    hub_share: float | None = 0.01
    min_hub_size: int = 20
    # An incremental run with at most this many new, changed and removed accounts broadcasts
    # them and their values when it finds the affected accounts (the population's keys are
    # scanned, not shuffled), and the job broadcasts the new and changed ones' ids to pick
    # their input rows; with more, it shuffles.
    broadcast_touched_accounts: int = 20_000
    # An incremental run whose recomputed region (`resolution.incremental.affected_region`)
    # has at most this many accounts broadcasts their ids to read the region's keys and edges
    # (a scan of the population's keys instead of a shuffle), and reads those keys once for
    # every round of cluster control; with more, it shuffles. The output MERGEs broadcast
    # their write scopes (`resolution.incremental.WriteScopes`) when each is this small.
    broadcast_region_accounts: int = 500_000
    # Which pairs an incremental run scores again (`resolution.incremental`): "holders" (the
    # default), every pair of accounts holding a value a touched account holds or held (the
    # holder counts of all their shared values exact, at the cost of re-pairing those
    # holders); "touched", the pairs with a new or changed end and those a value crossing the
    # hub cap made or unmade (faster, not exact: see the README).
    incremental_rescore: str = "holders"

    def problems(self) -> list[str]:
        found = [
            f"blocking.rules: unknown rule {name!r} (known: {', '.join(ATTRIBUTES)})"
            for name in self.rules
            if name not in ATTRIBUTES
        ]
        if not self.rules:
            found.append("blocking.rules: at least one rule is needed")
        if self.broadcast_touched_accounts < 0:
            found.append(
                "blocking.broadcast_touched_accounts: must be >= 0, got "
                f"{self.broadcast_touched_accounts}"
            )
        if self.broadcast_region_accounts < 0:
            found.append(
                "blocking.broadcast_region_accounts: must be >= 0, got "
                f"{self.broadcast_region_accounts}"
            )
        if self.incremental_rescore not in INCREMENTAL_RESCORES:
            found.append(
                f"blocking.incremental_rescore: must be one of {', '.join(INCREMENTAL_RESCORES)}, "
                f"got {self.incremental_rescore!r}"
            )
        if self.max_block_size < 2:
            found.append(f"blocking.max_block_size: must be >= 2, got {self.max_block_size}")
        if self.hub_share is not None and not 0.0 < self.hub_share <= 1.0:
            found.append(f"blocking.hub_share: must be in (0, 1] or null, got {self.hub_share}")
        if self.min_hub_size < 2:
            found.append(f"blocking.min_hub_size: must be >= 2, got {self.min_hub_size}")
        return found

    def hub_cap(self, account_count: int) -> int:
        """The most accounts a blockable value may be held by, among `account_count`.

        >>> BlockingConfig().hub_cap(1_500), BlockingConfig().hub_cap(100_000)
        (20, 100)
        >>> BlockingConfig().hub_cap(4_000), BlockingConfig(hub_share=None).hub_cap(1_500)
        (40, 100)
        """
        if self.hub_share is None:
            return self.max_block_size
        scaled = max(self.min_hub_size, math.floor(self.hub_share * account_count))
        return min(self.max_block_size, scaled)

    def for_population(self, account_count: int) -> BlockingConfig:
        """This config with `max_block_size` set to `hub_cap(account_count)`."""
        return replace(self, max_block_size=self.hub_cap(account_count))


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
    a difference is evidence against a match. `max_weight`: the most bits one agreement here
    may add when scoring (see `Comparison.max_weight`); null for no cap. `implied_by`: names of
    other comparisons whose agreement contains this one's: a pair that agrees on any of them
    (level >= 1) gets no information (-1) here, so one fact is not counted twice (a Chinese
    resident id number holds its holder's birth date: two numbers one edit apart almost
    always share it, whoever holds them).
    """

    name: str = ""
    kind: str = "exact"
    attributes: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    tf_adjusted: bool = True
    ignore_disagreement: bool = True
    frequency_classes: tuple[int, ...] = ()
    max_weight: float | None = None
    implied_by: tuple[str, ...] = ()

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
            max_weight=self.max_weight,
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


def _classed(
    name: str,
    kind: str,
    attributes: tuple[str, ...],
    thresholds: tuple[float, ...] = (),
    implied_by: tuple[str, ...] = (),
    *,
    ignore_disagreement: bool = True,
) -> ComparisonSpec:
    return ComparisonSpec(
        name,
        kind,
        attributes,
        thresholds,
        tf_adjusted=False,
        ignore_disagreement=ignore_disagreement,
        frequency_classes=DEFAULT_FREQUENCY_CLASSES,
        implied_by=implied_by,
    )


# The comparisons of conf/default.yaml (see there and the README, "Match quality", for why
# each is as it is).
DEFAULT_COMPARISONS = (
    # Identity differences count against a match (conf/default.yaml says why).
    _classed("name", "name", ("name",), (0.7, 0.88), ignore_disagreement=False),
    _classed("id_number", "identity", ("id_number",), ignore_disagreement=False),
    _classed(
        "birth_date",
        "exact",
        ("birth_date",),
        implied_by=("id_number",),
        ignore_disagreement=False,
    ),
    _classed("phone", "phone", ("phone",)),
    _classed("email", "exact", ("email",)),
    _classed("device", "exact", ("device",)),
    _classed("registration_ip", "ip", ("registration_ip",)),
    _classed("registered_address", "address", ("registered_address",), (0.85,)),
    _classed("payment_instrument", "exact", ("card", "bank_account", "alipay", "wallet")),
    _classed("collection_account", "exact", ("payment_other",)),
    _classed(
        "logistics_address",
        "logistics_address",
        ("return_address", "warehouse_address", "ship_from_address"),
        (0.85,),
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

    EM needs a population to learn from: with fewer than `min_training_accounts` accounts (and
    no `load_from`) the run scores with `pretrained`, a model trained at scale (null: the one
    the project ships, `conf/models/fellegi_sunter_generated.json`, trained on 20,000 generated
    accounts), and trains only when that model's comparisons are not the configured ones. At
    1,500 generated accounts, a model trained on them reached pairwise F1 0.38 (a name held by
    3-5 of them, common among so few, learnt as +13 bits with a prior 11 times higher than at
    20,000), the model trained at 20,000 0.985.

    `hub_values_inform` false (the default): a comparison whose only shared values are hubs
    (held by more than `blocking.max_block_size` accounts: a NAT address, a carrier's pickup
    point, a very common name) gives "no information" (level -1) for the pair, as blocking
    ignores hubs, so agreeing on one counts for nothing whatever EM would learn of it (rings
    opening accounts behind one carrier NAT made it worth 4.6 bits, enough with a shared
    common name to merge strangers).
    """

    kind: str = "evidence"
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    comparisons: tuple[ComparisonSpec, ...] = DEFAULT_COMPARISONS
    training: str = "all_pairs"
    training_sessions: tuple[tuple[str, ...], ...] = DEFAULT_TRAINING_SESSIONS
    threshold: float = 0.9
    load_from: str | None = None
    min_training_accounts: int = 5_000
    pretrained: str | None = None
    random_pairs: int = 1_000_000
    seed: int = 42
    u_smoothing: float = 1.0
    em_max_iterations: int = 25
    em_tolerance: float = 1e-4
    initial_prior: float = 0.3
    hub_values_inform: bool = False

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
            wrong = [n for n in spec.implied_by if n not in names or n == spec.name]
            if wrong:
                found.append(
                    f"model.comparisons.{spec.name}.implied_by: {wrong} are not other "
                    f"comparisons (known: {', '.join(names)})"
                )
        for index, session in enumerate(self.training_sessions):
            unknown = [rule for rule in session if rule not in ATTRIBUTES]
            if unknown or not session:
                found.append(
                    f"model.training_sessions[{index}]: needs known blocking rules, "
                    f"got {list(session)}"
                )
        if not 0.0 < self.threshold < 1.0:
            found.append(f"model.threshold: must be in (0, 1), got {self.threshold}")
        if self.min_training_accounts < 0:
            found.append(
                f"model.min_training_accounts: must be >= 0, got {self.min_training_accounts}"
            )
        if self.kind == "evidence" and self.pretrained is not None:
            found.append("model.pretrained: only a fellegi_sunter model is loaded")
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
    `max_iterations` bounds GraphX's Pregel supersteps. `edges_per_partition`: both engines
    run on the edges coalesced to one partition per that many edges, at least one per core
    (`resolution.clustering.edge_partitions`).
    """

    engine: str = "graphx"
    algorithm: str = "two_phase"
    checkpoint_interval: int = 2
    broadcast_threshold: int = -1
    max_iterations: int = 1000
    storage_level: str = "MEMORY_AND_DISK"
    edges_per_partition: int = 1_000_000

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
        if self.edges_per_partition < 1:
            found.append(
                f"clustering.edges_per_partition: must be >= 1, got {self.edges_per_partition}"
            )
        return found


# The logistics, payment and device attributes: what an operator must reuse to ship and get
# paid. Identity, phone, email and name are left out: nominee accounts differ there by design,
# and households share them legitimately.
NETWORK_ATTRIBUTES = (
    "return_address",
    "warehouse_address",
    "ship_from_address",
    "pickup_address",
    "contact_phone",
    "card",
    "bank_account",
    "alipay",
    "wallet",
    "payment_other",
    "device",
)
# Per signal count. A counterfeit test buy is proof; a rights-holder complaint names an
# infringement; a takedown was confirmed by the platform; customer complaints are mostly about
# service, and honest sellers get them too.
SIGNAL_WEIGHTS = {
    "test_buy_counterfeit": 8.0,
    "rights_holder_complaint": 3.0,
    "listing_takedown": 2.0,
    "other": 1.0,
    "customer_complaint": 0.5,
}


def _attribute_problems(where: str, attributes: Sequence[str]) -> list[str]:
    found = [
        f"{where}: unknown attribute {name!r} (known: {', '.join(EXACT_ATTRIBUTES)})"
        for name in attributes
        if name not in EXACT_ATTRIBUTES
    ]
    if not attributes:
        found.append(f"{where}: at least one attribute is needed")
    if len(set(attributes)) != len(attributes):
        found.append(f"{where}: attributes repeat: {list(attributes)}")
    return found


# What links entities: NETWORK_ATTRIBUTES without the carrier pickup point. A pickup point is a
# hub by kind (the carrier's counter, chosen by where a seller lives, not by whom it works
# with): measured at 1,500 generated accounts, 1,324 of 1,866 links were pickup points, each
# held by a median of 26 entities, and none told of a relation.
LINK_ATTRIBUTES = tuple(a for a in NETWORK_ATTRIBUTES if a != "pickup_address")


@dataclass(frozen=True)
class NetworkConfig:
    """Which shared values link entities, and the cap on how common such a value may be.

    Two entities are linked through a value of one of `attributes` (blocking attributes of
    `resolution.config.EXACT_ATTRIBUTES`) that both hold. A value held by more than
    `max_entities_per_value` entities links no one; the cap bounds the pairs one value makes
    to cap * (cap - 1) / 2. The cap counts entities, not accounts, and is independent of
    `blocking.max_block_size`: a supplier's warehouse that 300 accounts of three rings use is
    too common to block on but links three entities; a consolidator's warehouse that 30
    accounts of 30 sellers use is blocked on and links no one. The default 5 keeps a supplier
    of a few rings (measured at 20,000 generated accounts: supplier values are held by 2-4 true
    entities, consolidator warehouses and their desk phones by 66-445, carrier pickup points
    by 257-325; at 1,500 accounts the smallest consolidator warehouse is held by 7). Over the
    true entities of those 20,000 accounts, a cap of 50 gave 760 links, 630 of them through
    consolidators' desk phones; a cap of 5 (or 10) gives 130: the 39 related ring pairs, 90
    households sharing a device and 1 other.
    """

    attributes: tuple[str, ...] = LINK_ATTRIBUTES
    max_entities_per_value: int = 5

    def problems(self) -> list[str]:
        found = _attribute_problems("network.attributes", self.attributes)
        if self.max_entities_per_value < 2:
            found.append(
                f"network.max_entities_per_value: must be >= 2, got {self.max_entities_per_value}"
            )
        return found


@dataclass(frozen=True)
class LeadsConfig:
    """Which entities are leads, and how they are scored (see `entity_leads` for the formula).

    An entity is a lead when it has at least `min_accounts` accounts or at least `min_signals`
    enforcement signals. `signal_weights` weigh each signal by its type (types missing here
    weigh 0). A value counts as shared inside an entity when at least two of its accounts hold
    it, it is of one of `attributes`, and at most `max_value_holders` accounts in all hold it
    (a consolidator's warehouse used by two of the entity's accounts is no sign of a ring).
    `accounts_weight`, `shared_value_weight` and `match_weight` weigh the three parts of the
    entity's structure: its size, the values its accounts share, the mean match probability of
    its accepted pairs. `broadcast_grouped_accounts`: when the entities of two accounts or more
    hold at most this many accounts in all, their membership rows are broadcast to the joins
    that count the values shared and the pairs accepted inside entities (only such entities
    have any), which then scan the keys and edges instead of shuffling them with the whole
    membership; it changes how fast, not what, the leads are.
    """

    attributes: tuple[str, ...] = NETWORK_ATTRIBUTES
    signal_weights: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType(SIGNAL_WEIGHTS)
    )
    min_accounts: int = 2
    min_signals: int = 1
    max_value_holders: int = 100
    accounts_weight: float = 1.0
    shared_value_weight: float = 1.0
    match_weight: float = 1.0
    broadcast_grouped_accounts: int = 1_000_000

    def problems(self) -> list[str]:
        found = _attribute_problems("leads.attributes", self.attributes)
        found += [
            f"leads.signal_weights: unknown signal type {name!r} "
            f"(known: {', '.join(c.SIGNAL_TYPES)})"
            for name in self.signal_weights
            if name not in c.SIGNAL_TYPES
        ]
        found += [
            f"leads.signal_weights.{name}: must be >= 0, got {weight}"
            for name, weight in self.signal_weights.items()
            if not weight >= 0
        ]
        if self.min_accounts < 1:
            found.append(f"leads.min_accounts: must be >= 1, got {self.min_accounts}")
        if self.min_signals < 1:
            found.append(f"leads.min_signals: must be >= 1, got {self.min_signals}")
        if self.max_value_holders < 2:
            found.append(f"leads.max_value_holders: must be >= 2, got {self.max_value_holders}")
        if self.broadcast_grouped_accounts < 0:
            found.append(
                "leads.broadcast_grouped_accounts: must be >= 0, got "
                f"{self.broadcast_grouped_accounts}"
            )
        for name in ("accounts_weight", "shared_value_weight", "match_weight"):
            if not getattr(self, name) >= 0:
                found.append(f"leads.{name}: must be >= 0, got {getattr(self, name)}")
        return found


LINEAGE_CUTS = ("auto", "reliable", "local")
# The values a value cut may cut on (see `ClusterControlConfig`): the logistics values an
# upstream supplier shares with the rings it serves.
VALUE_CUT_ATTRIBUTES = (
    "warehouse_address",
    "ship_from_address",
    "contact_phone",
)


@dataclass(frozen=True)
class ClusterControlConfig:
    """When an entity is re-examined and how it is split (see the module docstring).

    Defaults, for the default evidence score (match weights are log2 Bayes factors with a
    prior of -3, accepted from about 3.2):

    - `max_size` 500: the data contract's rings have 5 to 150 accounts and blocking caps a
      shared value at 100 holders (`blocking.max_block_size`), so 500 accounts need several
      capped values chained together; it also bounds the entities the bridge search holds
      in one Python worker (at most 500 accounts).
    - `min_size_for_density` 200 and `min_density` 0.01: together they flag only entities of
      200 accounts and more with fewer than 0.01 of their possible pairs as edges; no chain of
      up to 200 accounts is ever flagged (its density 2/n is at least 0.01).
    - `min_bridge_part` 5: the smallest ring; an honest operator has 2-5 accounts, and a
      weak edge hanging one or two accounts on an entity is the match threshold's business.
    - `bridge_max_weight` 5.0: below one private strong asset shared (a device, return or
      warehouse address or label phone gives 9 - 3 = 6), so a weak edge is one accepted on a
      widely held value (its weight lowered by its holder count) or on soft evidence (names,
      IP networks, near-miss identity numbers).
    - `max_cut_edges` 2: one weak edge, or two through one shared value; a cut of two is
      searched among the `max_cut_candidates` weakest non-bridge weak edges of an entity
      (one Tarjan pass each).
    - `weight_step` 2.0 (a Bayes factor of 4) and `max_rounds` 5: from the acceptance weight,
      five steps reach `max_threshold` 12.0, the weight of one shared card or identity
      number alone; edges that strong are never dropped by a raised threshold.
    - `lineage_cut`: how each round's results are cut from their lineage: `reliable`
      (`DataFrame.checkpoint`, into the checkpoint directory the caller sets, which connected
      components needs anyway), `local` (`localCheckpoint`: faster, lost with an executor) or
      `auto` (the default: `local` when the executors run in the driver's process, a `local`
      master, where losing one loses the run anyway; else `reliable`; see
      `resolution.lineage`).
    - `value_cut` true, `value_cut_attributes` the values an upstream supplier provides
      (warehouse and ship-from addresses, label contact phones): an entity whose accepted
      edges resting only on one such value (the only blockable value the two accounts share)
      hold together parts of `min_bridge_part` accounts or more is split there, whatever the
      edges weigh. A supplier's warehouse or phone, used by 2-4 rings, fuses them by many
      parallel edges of 4.8-6.0 (a private strong asset's weight), which no weak-cut rule
      sees; the parts still share the value, so `entity_links` links them. Return addresses
      are left out: returned goods go back to the operation itself, so a return address is
      the ring's own. Measured at 20,000 generated accounts, seed 7: with 15% supplier share
      pairwise F1 0.956 without the cut (39 supplier-fused ring pairs), 0.992 with it (none
      merged, 39 linked); without suppliers 0.985 either way (with `return_address` in the
      list: 0.988 and 0.981, 4 true rings cut at their own return address).
    - `value_cut_kept_by` (`registration_ip`): a value cut whose parts also share a blockable
      value of these attributes (one their edges did not need: a registration IP alone is
      too weak to match on) is not made: a supplier does not register its customers'
      accounts, an operator registering two cells of its ring from one address does. At
      100,000 generated accounts without suppliers, 25 of the 52 true rings the value cut
      split kept such an IP, against 1 pair of different rings. Empty: no such check.
    - `grouped_relabel_max_accounts` 20,000: how a round finds the parts of the entities it
      split. When the largest of them has at most this many accounts, each entity's parts are
      found in one Python call of its own (union-find over its kept edges); above, with
      connected components over all their edges (`clustering.engine`). The same parts either
      way; the grouped search saves the tens of small Spark jobs connected components runs
      (about 3 s a round on 2 cores, most of a round over a few entities), and the bound keeps
      one huge entity from landing whole in one Python worker. 0: always connected
      components.
    """

    enabled: bool = True
    max_size: int = 500
    min_size_for_density: int = 200
    min_density: float = 0.01
    min_bridge_part: int = 5
    bridge_max_weight: float = 5.0
    max_cut_edges: int = 2
    max_cut_candidates: int = 200
    weight_step: float = 2.0
    max_threshold: float = 12.0
    max_rounds: int = 5
    lineage_cut: str = "auto"
    value_cut: bool = True
    value_cut_attributes: tuple[str, ...] = VALUE_CUT_ATTRIBUTES
    value_cut_kept_by: tuple[str, ...] = ("registration_ip",)
    grouped_relabel_max_accounts: int = 20_000

    def problems(self) -> list[str]:
        where = "cluster_control"
        found: list[str] = []
        if self.max_size < 2:
            found.append(f"{where}.max_size: must be >= 2, got {self.max_size}")
        if self.min_size_for_density < 3:
            found.append(
                f"{where}.min_size_for_density: must be >= 3, got {self.min_size_for_density}"
            )
        if not 0.0 < self.min_density <= 1.0:
            found.append(f"{where}.min_density: must be in (0, 1], got {self.min_density}")
        if self.min_bridge_part < 1:
            found.append(f"{where}.min_bridge_part: must be >= 1, got {self.min_bridge_part}")
        if not math.isfinite(self.bridge_max_weight):
            found.append(
                f"{where}.bridge_max_weight: must be a finite number, got {self.bridge_max_weight}"
            )
        if self.max_cut_edges not in (1, 2):
            found.append(f"{where}.max_cut_edges: must be 1 or 2, got {self.max_cut_edges}")
        if self.max_cut_candidates < 1:
            found.append(f"{where}.max_cut_candidates: must be >= 1, got {self.max_cut_candidates}")
        if not (math.isfinite(self.weight_step) and self.weight_step > 0):
            found.append(f"{where}.weight_step: must be > 0, got {self.weight_step}")
        if not math.isfinite(self.max_threshold):
            found.append(
                f"{where}.max_threshold: must be a finite number, got {self.max_threshold}"
            )
        if self.max_rounds < 1:
            found.append(f"{where}.max_rounds: must be >= 1, got {self.max_rounds}")
        if self.lineage_cut not in LINEAGE_CUTS:
            found.append(
                f"{where}.lineage_cut: expected one of {LINEAGE_CUTS}, got {self.lineage_cut!r}"
            )
        if self.grouped_relabel_max_accounts < 0:
            found.append(
                f"{where}.grouped_relabel_max_accounts: must be >= 0, "
                f"got {self.grouped_relabel_max_accounts}"
            )
        found += _attribute_problems(f"{where}.value_cut_attributes", self.value_cut_attributes)
        if self.value_cut_kept_by:
            found += _attribute_problems(f"{where}.value_cut_kept_by", self.value_cut_kept_by)
        return found


@dataclass(frozen=True)
class ResolutionConfig:
    """Everything the pure `resolve(...)` pipeline needs."""

    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    cluster_control: ClusterControlConfig = field(default_factory=ClusterControlConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    leads: LeadsConfig = field(default_factory=LeadsConfig)

    def problems(self) -> list[str]:
        return (
            self.blocking.problems()
            + self.model.problems()
            + self.clustering.problems()
            + self.cluster_control.problems()
            + self.network.problems()
            + self.leads.problems()
        )
