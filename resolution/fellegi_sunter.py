"""A probabilistic (Fellegi-Sunter) match model, with m estimated by EM.

Fellegi and Sunter (1969): each comparison of a candidate pair falls into a level (0 =
disagree, 1..k = increasingly close agreement, k = exact); a level's evidence is the log2
Bayes factor log2(m / u), where m = P(level | match) and u = P(level | non-match). A pair's
match weight is log2 of the prior odds plus the sum of its levels' weights; a null level
(-1) is no information and weighs 0.

Training (see `resolution.pipeline.train_model`): u starts from random pairs (almost all
non-matches). Splink's way estimates m and the prior by expectation maximisation over the
candidate pairs with u fixed (`estimate_m_em`, Winkler 1988). The default instead runs one EM
over every pair (`estimate_em` over `weighted_patterns`: the candidate pairs plus a weighted
random sample of the rest) with u free as well: a random sample counts its few true links as
chance agreements, which on ring data puts u of a private card as high as m times the prior
and caps every single-asset link at P = 0.5. EM only needs the count of each comparison
pattern, bounded by the product of the level counts, not by the data size: every iteration
is one Spark aggregation over that small pattern table, and only per-level sums reach the
driver.

Term-frequency adjustment, two ways. (1) Frequency classes (`ComparisonSpec.frequency_classes`,
the default for identifiers, devices, addresses and payment values): the exact level is split
by how many accounts hold the shared value, and each class gets its own m and u from EM, so a
card two accounts share and one 5,000 share are different evidence, learnt from the data.
(2) A per-value adjustment at the exact level (`tf_adjusted`, for names and birth dates):
log2(reference / tf), where tf is the share of accounts holding the value and the reference
is the mean tf of the values non-matches agree on (`estimate_tf_reference`, Winkler's
frequency-based weights); without a reference (sessions training) Splink's form
log2(u_exact / tf).

Input columns: `gamma_<name>` (integer level, -1 or null = no information) per comparison and,
for tf-adjusted comparisons, `tf_<name>` (double, null when the pair does not agree exactly).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from resolution.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

GAMMA_PREFIX = "gamma_"
TF_PREFIX = "tf_"
PAIR_COUNT = "pair_count"
NULL_LEVEL = -1
NULL_LABEL = "null"

# A term frequency is a share of accounts: clamped to [TF_FLOOR, 1] so that a zero (or a
# rounding error above 1) cannot give an infinite or positive-by-mistake adjustment.
TF_FLOOR = 1e-12
# Pseudo-count added to every level's posterior-weighted count in the EM M-step.
EM_PSEUDO_COUNT = 0.5
# How far from 1 a level distribution may sum (JSON round trips, EM arithmetic).
SUM_TOLERANCE = 1e-6

_INTEGRAL_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_POSTERIOR = "_posterior"
_PARAMETERS = "_parameters"


def probability_from_weight(match_weight: Column) -> Column:
    """2^w / (1 + 2^w), written as 1 / (1 + 2^-w)."""
    return F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -match_weight))


def gamma_column(name: str) -> str:
    """The comparison-level column of comparison `name`."""
    return f"{GAMMA_PREFIX}{name}"


def tf_column(name: str) -> str:
    """The term-frequency column of comparison `name`."""
    return f"{TF_PREFIX}{name}"


@dataclass(frozen=True)
class Comparison:
    """One comparison: its name and the labels of its levels 0..k (k = exact agreement).

    `tf_adjusted`: the exact level is adjusted by the term frequency in `tf_<name>`.
    `ignore_disagreement`: when scoring, the disagreement level (0) weighs 0, as a null
    does: for evidence whose absence says nothing (a nominee account of a ring has its own
    name, phone and cards by design). m and u of level 0 are still estimated.
    `max_weight`: when scoring, no level of this comparison adds more than this many bits
    (tf adjustment included); for evidence of where an account is rather than who runs it
    (registration IP, registered address), which unrelated sellers at one address share
    together, so that the independence assumption would count one fact twice.
    """

    name: str
    levels: tuple[str, ...]
    tf_adjusted: bool = False
    ignore_disagreement: bool = False
    max_weight: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.levels))
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def top_level(self) -> int:
        """k: the highest (exact) level."""
        return len(self.levels) - 1

    def problems(self) -> list[str]:
        found: list[str] = []
        if not self.name or not self.name.replace("_", "").isalnum():
            found.append(f"comparison name {self.name!r}: use letters, digits and underscores only")
        if len(self.levels) < 2:
            found.append(
                f"comparison {self.name!r}: needs at least 2 levels (0 = disagree, "
                f"1..k = agree), got {list(self.levels)}"
            )
        if NULL_LABEL in self.levels:
            found.append(f"comparison {self.name!r}: {NULL_LABEL!r} is reserved for level -1")
        if len(set(self.levels)) != len(self.levels):
            found.append(f"comparison {self.name!r}: level labels repeat: {list(self.levels)}")
        if self.max_weight is not None and not self.max_weight > 0.0:
            found.append(f"comparison {self.name!r}: max_weight must be > 0, got {self.max_weight}")
        return found


def _bayes_factor(m: float, u: float) -> float:
    if u == 0.0:
        # A level impossible under both hypotheses carries no evidence.
        return math.inf if m > 0.0 else 1.0
    return m / u


def _log2(value: float) -> float:
    if value == 0.0:
        return -math.inf
    return math.log2(value)


def _distribution_problems(
    kind: str, comparisons: Sequence[Comparison], table: Mapping[str, Sequence[float]]
) -> list[str]:
    found: list[str] = []
    names = [comparison.name for comparison in comparisons]
    unknown = sorted(set(table) - set(names))
    if unknown:
        found.append(f"{kind}: probabilities for unknown comparisons {unknown} (known: {names})")
    for comparison in comparisons:
        if comparison.name not in table:
            found.append(f"{kind}[{comparison.name!r}]: missing")
            continue
        probabilities = tuple(table[comparison.name])
        if len(probabilities) != len(comparison.levels):
            found.append(
                f"{kind}[{comparison.name!r}]: {len(probabilities)} probabilities for "
                f"{len(comparison.levels)} levels {list(comparison.levels)}"
            )
            continue
        if any(not (math.isfinite(p) and 0.0 <= p <= 1.0) for p in probabilities):
            found.append(
                f"{kind}[{comparison.name!r}]: each must be in [0, 1], got {probabilities}"
            )
            continue
        total = math.fsum(probabilities)
        if abs(total - 1.0) > SUM_TOLERANCE:
            found.append(
                f"{kind}[{comparison.name!r}]: probabilities sum to {total:.9g}, not 1 "
                f"(got {probabilities})"
            )
    return found


def _frozen_table(table: Mapping[str, Sequence[float]]) -> Mapping[str, tuple[float, ...]]:
    return MappingProxyType({name: tuple(float(p) for p in ps) for name, ps in table.items()})


@dataclass(frozen=True)
class FellegiSunterModel:
    """m, u per comparison level and the prior P(match) among candidate pairs.

    Example::

        email = Comparison("email", ("different", "exact"), tf_adjusted=True)
        model = FellegiSunterModel((email,), m={"email": (0.1, 0.9)},
                                   u={"email": (0.99, 0.01)}, prior=0.01)
        print(model.describe())
    """

    comparisons: tuple[Comparison, ...]
    m: Mapping[str, tuple[float, ...]]
    u: Mapping[str, tuple[float, ...]]
    prior: float
    tf_reference: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "comparisons", tuple(self.comparisons))
        found: list[str] = []
        names = [comparison.name for comparison in self.comparisons]
        if not names:
            found.append("comparisons: at least one is needed")
        if len(set(names)) != len(names):
            found.append(f"comparisons: names repeat: {names}")
        found += _distribution_problems("m", self.comparisons, self.m)
        found += _distribution_problems("u", self.comparisons, self.u)
        if not (math.isfinite(self.prior) and 0.0 < self.prior < 1.0):
            found.append(f"prior: must be in (0, 1), got {self.prior}")
        adjusted = {x.name for x in self.comparisons if x.tf_adjusted}
        for name, value in self.tf_reference.items():
            if name not in adjusted:
                found.append(f"tf_reference: {name!r} is not a tf-adjusted comparison")
            elif not (math.isfinite(value) and 0.0 < value <= 1.0):
                found.append(f"tf_reference[{name!r}]: must be in (0, 1], got {value}")
        if found:
            raise ConfigError("invalid Fellegi-Sunter model: " + "; ".join(found))
        object.__setattr__(self, "m", _frozen_table(self.m))
        object.__setattr__(self, "u", _frozen_table(self.u))
        object.__setattr__(self, "prior", float(self.prior))
        object.__setattr__(
            self,
            "tf_reference",
            MappingProxyType({k: float(v) for k, v in self.tf_reference.items()}),
        )

    @property
    def prior_weight(self) -> float:
        """log2 of the prior odds, prior / (1 - prior)."""
        return math.log2(self.prior / (1.0 - self.prior))

    def bayes_factors(self) -> dict[str, tuple[float, ...]]:
        """m / u per comparison level (inf when only u is 0; 1 when both are)."""
        return {
            comparison.name: tuple(
                _bayes_factor(m, u)
                for m, u in zip(self.m[comparison.name], self.u[comparison.name], strict=True)
            )
            for comparison in self.comparisons
        }

    def weights(self) -> dict[str, tuple[float, ...]]:
        """log2(m / u) per comparison level, before any term-frequency adjustment."""
        return {name: tuple(_log2(f) for f in fs) for name, fs in self.bayes_factors().items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (for MLflow and saved models); `from_dict` reads it back."""
        return {
            "comparisons": [
                {
                    "name": x.name,
                    "levels": list(x.levels),
                    "tf_adjusted": x.tf_adjusted,
                    "ignore_disagreement": x.ignore_disagreement,
                    "max_weight": x.max_weight,
                }
                for x in self.comparisons
            ],
            "m": {name: list(ps) for name, ps in self.m.items()},
            "u": {name: list(ps) for name, ps in self.u.items()},
            "prior": self.prior,
            "tf_reference": dict(self.tf_reference),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FellegiSunterModel:
        """The model `to_dict` wrote; a missing key raises `ConfigError` naming it."""
        missing = [key for key in ("comparisons", "m", "u", "prior") if key not in data]
        if missing:
            raise ConfigError(
                f"Fellegi-Sunter model dict lacks {missing} (found keys: {sorted(data)})"
            )
        for index, item in enumerate(data["comparisons"]):
            if "name" not in item or "levels" not in item:
                raise ConfigError(
                    f"Fellegi-Sunter model dict: comparisons[{index}] needs 'name' and 'levels' "
                    f"(found keys: {sorted(item)})"
                )
        comparisons = tuple(
            Comparison(
                name=item["name"],
                levels=tuple(item["levels"]),
                tf_adjusted=bool(item.get("tf_adjusted", False)),
                ignore_disagreement=bool(item.get("ignore_disagreement", False)),
                max_weight=(None if item.get("max_weight") is None else float(item["max_weight"])),
            )
            for item in data["comparisons"]
        )
        return cls(
            comparisons=comparisons,
            m=data["m"],
            u=data["u"],
            prior=data["prior"],
            tf_reference=data.get("tf_reference") or {},
        )

    def describe(self) -> str:
        """A readable table of m, u and the log2 weight per comparison level."""
        header = ("comparison", "level", "label", "m", "u", "log2(m/u)")
        rows = [header]
        weights = self.weights()
        for comparison in self.comparisons:
            for level, label in enumerate(comparison.levels):
                suffix = " +tf" if comparison.tf_adjusted and level == comparison.top_level else ""
                if comparison.ignore_disagreement and level == 0:
                    suffix = " (scored 0)"
                elif (
                    comparison.max_weight is not None
                    and weights[comparison.name][level] > comparison.max_weight
                ):
                    suffix += f" (scored {comparison.max_weight:+g})"
                rows.append(
                    (
                        comparison.name,
                        str(level),
                        label + suffix,
                        f"{self.m[comparison.name][level]:.6f}",
                        f"{self.u[comparison.name][level]:.6f}",
                        f"{weights[comparison.name][level]:+.3f}",
                    )
                )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            f"Fellegi-Sunter model: prior {self.prior:.6g} "
            f"(log2 prior odds {self.prior_weight:+.3f}); null level (-1) weighs 0"
        ]
        if self.tf_reference:
            references = ", ".join(f"{k} {v:.3g}" for k, v in self.tf_reference.items())
            lines.append(f"term-frequency references (mean tf of chance agreements): {references}")
        lines += [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True)
class EMResult:
    """The estimated model, how many iterations ran, whether they converged, and per iteration
    `{"iteration", "prior", "max_change", "m", "u"}`."""

    model: FellegiSunterModel
    iterations: int
    converged: bool
    history: tuple[dict[str, Any], ...]


# Checks ---------------------------------------------------------------------------------------


def _require_gamma_columns(
    frame: DataFrame, comparisons: Sequence[Comparison], *, with_tf: bool = False
) -> None:
    """Missing or non-integer `gamma_*` (and, with_tf, `tf_*`) columns, all reported at once."""
    if not comparisons:
        raise ConfigError("at least one comparison is needed")
    fields = {field.name: field.dataType for field in frame.schema.fields}
    found: list[str] = []
    for comparison in comparisons:
        name = gamma_column(comparison.name)
        if name not in fields:
            found.append(f"missing column {name!r}")
        elif not isinstance(fields[name], _INTEGRAL_TYPES):
            found.append(
                f"column {name!r} must be an integer level, is {fields[name].simpleString()}"
            )
        if with_tf and comparison.tf_adjusted and tf_column(comparison.name) not in fields:
            found.append(
                f"missing column {tf_column(comparison.name)!r} "
                f"(comparison {comparison.name!r} is tf_adjusted)"
            )
    if found:
        raise InputError(
            "comparison levels: " + "; ".join(found) + f" (columns found: {sorted(fields)})"
        )


def _level_bounds(comparisons: Sequence[Comparison]) -> list[Column]:
    return [
        expression(F.col(gamma_column(x.name))).alias(f"_{kind}_{x.name}")
        for x in comparisons
        for kind, expression in (("min", F.min), ("max", F.max))
    ]


def _check_level_bounds(bounds: Row, comparisons: Sequence[Comparison]) -> None:
    """Raise `InputError` listing every gamma column whose levels fall outside -1..k."""
    found: list[str] = []
    for x in comparisons:
        low, high = bounds[f"_min_{x.name}"], bounds[f"_max_{x.name}"]
        if low is not None and (low < NULL_LEVEL or high > x.top_level):
            labels = ", ".join(f"{i} = {label}" for i, label in enumerate(x.levels))
            found.append(
                f"{gamma_column(x.name)!r} holds levels {low}..{high}, outside -1..{x.top_level} "
                f"(-1 = null, {labels})"
            )
    if found:
        raise InputError("comparison levels out of range: " + "; ".join(found))


# Patterns and u ---------------------------------------------------------------------------------


def comparison_patterns(gammas: DataFrame, comparisons: Sequence[Comparison]) -> DataFrame:
    """`(gamma_<name>..., pair_count)`: how many pairs share each comparison pattern.

    Requires an integer `gamma_<name>` per comparison; null and -1 stay distinct keys here
    (both mean no information downstream). The result is bounded by the product of the level
    counts, whatever the number of pairs. Example::

        patterns = comparison_patterns(candidate_gammas, comparisons)
    """
    _require_gamma_columns(gammas, comparisons)
    keys = [
        F.col(gamma_column(x.name)).cast("int").alias(gamma_column(x.name)) for x in comparisons
    ]
    return gammas.groupBy(*keys).agg(F.count(F.lit(1)).alias(PAIR_COUNT))


def estimate_u(
    random_pair_gammas: DataFrame,
    comparisons: Sequence[Comparison],
    *,
    smoothing: float = 1.0,
) -> dict[str, tuple[float, ...]]:
    """u per comparison level: the level frequencies among random pairs, additively smoothed.

    u[level] = (count[level] + smoothing) / (non-null count + smoothing * (k + 1)); null
    levels (-1 or null) are left out of both. Runs one Spark aggregation. Example::

        u = estimate_u(random_pair_gammas, comparisons, smoothing=1.0)
    """
    if not (math.isfinite(smoothing) and smoothing >= 0.0):
        raise ConfigError(f"smoothing: must be a finite number >= 0, got {smoothing}")
    _require_gamma_columns(random_pair_gammas, comparisons)
    counts = [
        F.count(F.when(F.col(gamma_column(x.name)) == F.lit(level), F.lit(1))).alias(
            f"_n_{x.name}_{level}"
        )
        for x in comparisons
        for level in range(len(x.levels))
    ]
    row = random_pair_gammas.agg(*counts, *_level_bounds(comparisons)).collect()[0]
    _check_level_bounds(row, comparisons)
    u: dict[str, tuple[float, ...]] = {}
    for x in comparisons:
        level_counts = [row[f"_n_{x.name}_{level}"] for level in range(len(x.levels))]
        denominator = sum(level_counts) + smoothing * len(x.levels)
        if denominator == 0:
            raise InputError(
                f"{gamma_column(x.name)!r}: no non-null level among the random pairs and "
                "smoothing is 0, so u cannot be estimated; sample more pairs or smooth"
            )
        u[x.name] = tuple((n + smoothing) / denominator for n in level_counts)
        logger.info(
            "u of %s from %d non-null random pairs: %s", x.name, sum(level_counts), u[x.name]
        )
    return u


def sample_random_pairs(accounts: DataFrame, *, id_column: str, pairs: int, seed: int) -> DataFrame:
    """`(account_id_l, account_id_r)`: `pairs` random pairs of distinct accounts, l < r.

    As Splink's u sampling: the s = ceil((1 + sqrt(1 + 8 * pairs)) / 2) accounts with the
    smallest `xxhash64(id, seed)` (a distributed top-s, no sort of the table) are paired with
    each other, and the `pairs` pairs with the smallest pair hash are kept. No cross join of
    the whole table; the same ids and seed give the same pairs whatever the partitioning.
    Fewer accounts than s give all their pairs. Null ids are ignored. Example::

        random_pairs = sample_random_pairs(accounts, id_column="account_id", pairs=100_000, seed=7)
    """
    if id_column not in accounts.columns:
        raise InputError(
            f"missing column {id_column!r} (columns found: {sorted(accounts.columns)})"
        )
    if pairs < 1:
        raise ConfigError(f"pairs: must be >= 1, got {pairs}")
    sample_size = math.ceil((1 + math.sqrt(1 + 8 * pairs)) / 2)
    ids = accounts.select(F.col(id_column).alias("_id")).where(F.col("_id").isNotNull()).distinct()
    sampled = (
        ids.withColumn("_rank", F.xxhash64(F.col("_id"), F.lit(seed)))
        .orderBy("_rank", "_id")
        .limit(sample_size)
        .select("_id")
    )
    left = sampled.select(F.col("_id").alias(c.ACCOUNT_ID_L))
    right = sampled.select(F.col("_id").alias(c.ACCOUNT_ID_R))
    pair_rank = F.xxhash64(F.col(c.ACCOUNT_ID_L), F.col(c.ACCOUNT_ID_R), F.lit(seed))
    return (
        left.crossJoin(right)
        .where(F.col(c.ACCOUNT_ID_L) < F.col(c.ACCOUNT_ID_R))
        .orderBy(pair_rank, c.ACCOUNT_ID_L, c.ACCOUNT_ID_R)
        .limit(pairs)
    )


# EM ---------------------------------------------------------------------------------------------


def default_m(comparison: Comparison) -> tuple[float, ...]:
    # Matches mostly agree, more often the closer the level: 0.05 on "disagree", the rest in
    # proportion to the level number.
    top = comparison.top_level
    rest = [0.95 * level / (top * (top + 1) / 2) for level in range(1, top + 1)]
    return (0.05, *rest)


def _parameter_schema(comparisons: Sequence[Comparison]) -> T.StructType:
    fields = [T.StructField("prior", T.DoubleType())]
    for x in comparisons:
        fields.append(T.StructField(f"m_{x.name}", T.ArrayType(T.DoubleType())))
        fields.append(T.StructField(f"u_{x.name}", T.ArrayType(T.DoubleType())))
    return T.StructType(fields)


def _parameters(model: FellegiSunterModel, schema: T.StructType) -> Column:
    """The model as one struct, parsed from a single JSON literal.

    One literal instead of one per level: the iteration's expressions are built once, and each
    iteration costs a handful of Py4J calls instead of a few hundred (about a second per
    iteration on a busy driver). Spark folds the literal, so each iteration still compiles its
    own code.
    """
    payload: dict[str, Any] = {"prior": model.prior}
    for x in model.comparisons:
        payload[f"m_{x.name}"] = list(model.m[x.name])
        payload[f"u_{x.name}"] = list(model.u[x.name])
    return F.from_json(F.lit(json.dumps(payload)), schema)


def _posterior(comparisons: Sequence[Comparison], *, as_scored: bool = False) -> Column:
    """P(match | pattern) = lambda prod m / (lambda prod m + (1 - lambda) prod u).

    Reads the parameters from the `_parameters` struct; null levels (-1 or null) multiply by 1.
    A level above k gives null (reported by the level check after the first aggregation).
    `as_scored`: level 0 of an `ignore_disagreement` comparison multiplies by 1 too, as in
    `score_pairs`.
    """
    parameters = F.col(_PARAMETERS)
    prior = parameters.getField("prior")
    under_match: Column = prior
    under_non_match: Column = F.lit(1.0) - prior
    for x in comparisons:
        gamma = F.col(gamma_column(x.name))
        known = gamma >= F.lit(1 if as_scored and x.ignore_disagreement else 0)
        index = gamma + F.lit(1)
        m = F.try_element_at(parameters.getField(f"m_{x.name}"), index)
        u = F.try_element_at(parameters.getField(f"u_{x.name}"), index)
        under_match = under_match * F.when(known, m).otherwise(F.lit(1.0))
        under_non_match = under_non_match * F.when(known, u).otherwise(F.lit(1.0))
    evidence = under_match + under_non_match
    return F.when(evidence > F.lit(0.0), under_match / evidence).otherwise(prior)


def _m_step_sums(comparisons: Sequence[Comparison]) -> list[Column]:
    count = F.col(PAIR_COUNT).cast("double")
    posterior = F.col(_POSTERIOR)
    sums = [
        F.sum(count * posterior).alias("_matches"),
        F.sum(count).alias("_pairs"),
    ]
    for x in comparisons:
        gamma = F.col(gamma_column(x.name))
        for level in range(len(x.levels)):
            at_level = gamma == F.lit(level)
            sums.append(F.sum(F.when(at_level, count * posterior)).alias(f"_m_{x.name}_{level}"))
            sums.append(
                F.sum(F.when(at_level, count * (F.lit(1.0) - posterior))).alias(
                    f"_u_{x.name}_{level}"
                )
            )
    return sums


def _normalised(
    sums: Row,
    kind: str,
    comparison: Comparison,
    previous: tuple[float, ...],
    warned: set[tuple[str, str]],
) -> tuple[float, ...]:
    """The level distribution of m (kind "m") or u from the M-step sums, smoothed.

    A comparison without any weighted non-null level keeps `previous`, with one warning per
    (kind, comparison) in `warned` (an attribute the data lacks would repeat it every
    iteration)."""
    weights = [
        sums[f"_{kind}_{comparison.name}_{level}"] or 0.0 for level in range(len(comparison.levels))
    ]
    total = math.fsum(weights)
    if total <= 0.0:
        if (kind, comparison.name) in warned:
            return previous
        warned.add((kind, comparison.name))
        logger.warning(
            "EM: no %s-weighted non-null level of %s; keeping %s = %s",
            "match" if kind == "m" else "non-match",
            comparison.name,
            kind,
            previous,
        )
        return previous
    # Half a pair's worth on every level, split between m and u as the pairs are: a level no
    # match happened to reach gets a small m, not 0 (which would weigh -inf and veto every
    # pair at that level), and a level no pair reached weighs about 0 rather than the prior's
    # inverse (equal pseudo-counts over a few matches and millions of non-matches).
    pairs = float(sums["_pairs"] or 0.0)
    share = float(sums["_matches"] or 0.0) / pairs if pairs > 0.0 else 0.5
    pseudo = EM_PSEUDO_COUNT * (share if kind == "m" else 1.0 - share)
    smoothed = [w + pseudo for w in weights]
    total = math.fsum(smoothed)
    return tuple(w / total for w in smoothed)


def _largest_change(before: FellegiSunterModel, after: FellegiSunterModel, fix_u: bool) -> float:
    changes = [abs(after.prior - before.prior)]
    for x in before.comparisons:
        changes += [abs(a - b) for a, b in zip(after.m[x.name], before.m[x.name], strict=True)]
        if not fix_u:
            changes += [abs(a - b) for a, b in zip(after.u[x.name], before.u[x.name], strict=True)]
    return max(changes)


def estimate_m_em(
    candidate_gammas: DataFrame,
    comparisons: Sequence[Comparison],
    *,
    u: Mapping[str, Sequence[float]],
    initial_m: Mapping[str, Sequence[float]] | None = None,
    initial_prior: float = 0.01,
    max_iterations: int = 25,
    tolerance: float = 1e-4,
    fix_u: bool = True,
) -> EMResult:
    """Estimate m (and u unless `fix_u`) and the prior by EM over the comparison patterns.

    Requires an integer `gamma_<name>` per comparison. The pattern counts are cached for the
    run and unpersisted at the end; each iteration is one aggregation (E-step: the posterior
    match probability of each pattern; M-step: m, u and the prior as posterior-weighted level
    frequencies, null levels left out). Stops when no parameter moves more than `tolerance`
    or after `max_iterations`. Example::

        u = estimate_u(random_pair_gammas, comparisons)
        result = estimate_m_em(candidate_gammas, comparisons, u=u)
        logger.info("%s", result.model.describe())
    """
    comparisons = tuple(comparisons)
    _require_gamma_columns(candidate_gammas, comparisons)
    return estimate_em(
        comparison_patterns(candidate_gammas, comparisons),
        comparisons,
        u=u,
        initial_m=initial_m,
        initial_prior=initial_prior,
        max_iterations=max_iterations,
        tolerance=tolerance,
        fix_u=fix_u,
    )


def _small_table(patterns: DataFrame) -> DataFrame:
    """The pattern table in one partition, computed once, its lineage cut.

    Every EM iteration plans a query over it; with the lineage kept, each plan (and each
    adaptive re-plan's explain string) carries the whole comparison of the pairs behind it,
    which at 100,000 accounts ran the driver out of heap. A local checkpoint keeps the few
    thousand rows on the executors (nothing reaches the driver) and plans as a scan.
    """
    return patterns.coalesce(1).localCheckpoint(eager=True)


def estimate_em(
    patterns: DataFrame,
    comparisons: Sequence[Comparison],
    *,
    u: Mapping[str, Sequence[float]],
    initial_m: Mapping[str, Sequence[float]] | None = None,
    initial_prior: float = 0.01,
    max_iterations: int = 25,
    tolerance: float = 1e-4,
    fix_u: bool = True,
) -> EMResult:
    """EM over a pattern table: `gamma_<name>` per comparison and `pair_count` (how many
    pairs have the pattern; a double when the patterns are weighted, as in
    `weighted_patterns`). See `estimate_m_em`."""
    if max_iterations < 1:
        raise ConfigError(f"max_iterations: must be >= 1, got {max_iterations}")
    if not (math.isfinite(tolerance) and tolerance > 0.0):
        raise ConfigError(f"tolerance: must be > 0, got {tolerance}")
    comparisons = tuple(comparisons)
    _require_gamma_columns(patterns, comparisons)
    if PAIR_COUNT not in patterns.columns:
        raise InputError(f"estimate_em: the patterns lack {PAIR_COUNT!r}")
    start_m = initial_m if initial_m is not None else {x.name: default_m(x) for x in comparisons}
    model = FellegiSunterModel(
        comparisons=comparisons,
        m={name: tuple(ps) for name, ps in start_m.items()},
        u={name: tuple(ps) for name, ps in u.items()},
        prior=initial_prior,
    )
    # A few hundred rows at most: one partition makes each iteration one task, not one per
    # shuffle partition.
    patterns = _small_table(patterns)
    schema = _parameter_schema(comparisons)
    posterior = _posterior(comparisons)
    sums_and_bounds = _m_step_sums(comparisons) + _level_bounds(comparisons)
    history: list[dict[str, Any]] = []
    warned: set[tuple[str, str]] = set()
    converged = False
    iteration = 0
    try:
        for iteration in range(1, max_iterations + 1):
            sums = (
                patterns.withColumn(_PARAMETERS, _parameters(model, schema))
                .withColumn(_POSTERIOR, posterior)
                .agg(*sums_and_bounds)
                .collect()[0]
            )
            if iteration == 1:
                _check_level_bounds(sums, comparisons)
                if not sums["_pairs"]:
                    raise InputError("estimate_m_em: the candidate pairs are empty")
            updated = FellegiSunterModel(
                comparisons=comparisons,
                m={x.name: _normalised(sums, "m", x, model.m[x.name], warned) for x in comparisons},
                u=model.u
                if fix_u
                else {
                    x.name: _normalised(sums, "u", x, model.u[x.name], warned) for x in comparisons
                },
                prior=sums["_matches"] / sums["_pairs"],
            )
            change = _largest_change(model, updated, fix_u)
            model = updated
            logger.info(
                "EM iteration %d: prior %.6g, largest parameter change %.3g",
                iteration,
                model.prior,
                change,
            )
            history.append(
                {
                    "iteration": iteration,
                    "prior": model.prior,
                    "max_change": change,
                    "m": {name: list(ps) for name, ps in model.m.items()},
                    "u": {name: list(ps) for name, ps in model.u.items()},
                }
            )
            if change < tolerance:
                converged = True
                break
    finally:
        patterns.unpersist()
    if not converged:
        logger.warning(
            "EM did not converge within %d iterations (tolerance %.3g)", max_iterations, tolerance
        )
    return EMResult(model=model, iterations=iteration, converged=converged, history=tuple(history))


def weighted_patterns(
    parts: Sequence[tuple[DataFrame, float]], comparisons: Sequence[Comparison]
) -> DataFrame:
    """One pattern table from several pair sets, each pair counting `weight` times.

    Used to stand for all pairs of accounts: the candidate pairs with weight 1 and a random
    sample of the other pairs with weight (other pairs) / (sample size). Example::

        patterns = weighted_patterns([(candidate_gammas, 1.0), (sample_gammas, 2_000.0)], cs)
    """
    comparisons = tuple(comparisons)
    keys = [gamma_column(x.name) for x in comparisons]
    frames = [
        comparison_patterns(gammas, comparisons).select(
            *keys, (F.col(PAIR_COUNT).cast("double") * F.lit(float(weight))).alias(PAIR_COUNT)
        )
        for gammas, weight in parts
    ]
    union = frames[0]
    for frame in frames[1:]:
        union = union.unionByName(frame)
    return union.groupBy(*keys).agg(F.sum(PAIR_COUNT).alias(PAIR_COUNT))


def estimate_tf_reference(
    parts: Sequence[tuple[DataFrame, float]], model: FellegiSunterModel
) -> dict[str, float]:
    """Per tf-adjusted comparison, the mean term frequency of the values that non-matches
    agree on exactly: sum (1 - P(match)) tf / sum (1 - P(match)) over the pairs at the exact
    level with a tf, each pair of `parts` counting its weight (as in `weighted_patterns`).

    The relative term-frequency adjustment log2(reference / tf) then leaves the average chance
    agreement at the trained log2(m / u) and moves a value up or down by how much rarer or
    commoner it is than the values chance agreements fall on (Winkler's frequency-based
    weights). One Spark aggregation per part; a comparison with no such pair gets none (and is
    scored in Splink's form).
    """
    adjusted = [x for x in model.comparisons if x.tf_adjusted]
    if not adjusted:
        return {}
    schema = _parameter_schema(model.comparisons)
    sums: dict[str, list[float]] = {x.name: [0.0, 0.0] for x in adjusted}
    for gammas, weight in parts:
        _require_gamma_columns(gammas, model.comparisons, with_tf=True)
        non_match = F.lit(1.0) - F.col(_POSTERIOR)
        aggregates = []
        for x in adjusted:
            tf = F.col(tf_column(x.name)).cast("double")
            at_exact = (F.col(gamma_column(x.name)) == F.lit(x.top_level)) & tf.isNotNull()
            aggregates.append(F.sum(F.when(at_exact, non_match * tf)).alias(f"_t_{x.name}"))
            aggregates.append(F.sum(F.when(at_exact, non_match)).alias(f"_n_{x.name}"))
        row = (
            gammas.withColumn(_PARAMETERS, _parameters(model, schema))
            .withColumn(_POSTERIOR, _posterior(model.comparisons))
            .agg(*aggregates)
            .collect()[0]
        )
        for x in adjusted:
            sums[x.name][0] += weight * float(row[f"_t_{x.name}"] or 0.0)
            sums[x.name][1] += weight * float(row[f"_n_{x.name}"] or 0.0)
    reference = {}
    for name, (weighted_tf, mass) in sums.items():
        if mass > 0.0 and weighted_tf > 0.0:
            reference[name] = min(max(weighted_tf / mass, TF_FLOOR), 1.0)
    logger.info("term-frequency references: %s", reference)
    return reference


def estimate_prior(
    candidate_gammas: DataFrame,
    model: FellegiSunterModel,
    *,
    total_pairs: int,
    max_iterations: int = 50,
    tolerance: float = 1e-9,
) -> float:
    """P(match) for two accounts drawn at random, with m and u fixed.

    Pairs that blocking did not propose are taken as non-matches, so the prior is the expected
    number of matches among the candidate pairs over all `total_pairs` pairs, and that
    expectation depends on the prior: iterate lambda <- sum over candidate patterns of
    count * P(match | pattern, lambda) / total_pairs to its fixed point (the EM update of the
    prior alone). Term frequencies are left out here (patterns hold levels only). Example::

        prior = estimate_prior(candidate_gammas, model, total_pairs=n * (n - 1) // 2)
    """
    if total_pairs < 1:
        raise InputError(f"estimate_prior: total_pairs must be >= 1, got {total_pairs}")
    comparisons = model.comparisons
    _require_gamma_columns(candidate_gammas, comparisons)
    patterns = _small_table(comparison_patterns(candidate_gammas, comparisons))
    schema = _parameter_schema(comparisons)
    posterior = _posterior(comparisons, as_scored=True)
    prior = model.prior
    iterations = 0
    try:
        for iterations in range(1, max_iterations + 1):  # noqa: B007 (logged below)
            current = FellegiSunterModel(comparisons, m=model.m, u=model.u, prior=prior)
            row = (
                patterns.withColumn(_PARAMETERS, _parameters(current, schema))
                .withColumn(_POSTERIOR, posterior)
                .agg(F.sum(F.col(PAIR_COUNT).cast("double") * F.col(_POSTERIOR)).alias("m"))
                .collect()[0]
            )
            expected = float(row["m"] or 0.0)
            updated = min(max(expected / total_pairs, 1e-15), 1.0 - 1e-9)
            change = abs(math.log(updated) - math.log(prior))
            prior = updated
            if change < tolerance:
                break
    finally:
        patterns.unpersist()
    logger.info(
        "prior P(match) of two random accounts: %.6g after %d iterations (%.0f expected matches "
        "among candidate pairs)",
        prior,
        iterations,
        prior * total_pairs,
    )
    return prior


# Scoring ----------------------------------------------------------------------------------------


def _out_of_range(gamma: Column, comparison: Comparison) -> Column:
    return F.raise_error(
        F.concat(
            F.lit(f"column {gamma_column(comparison.name)!r} holds level "),
            gamma.cast("string"),
            F.lit(f", outside -1..{comparison.top_level} (levels: {list(comparison.levels)})"),
        )
    )


def _contribution(
    comparison: Comparison, model: FellegiSunterModel, weights: Sequence[float]
) -> Column:
    """struct(comparison, level, weight, tf_adjustment) of one comparison of a pair."""
    gamma = F.col(gamma_column(comparison.name))
    is_null = gamma.isNull() | (gamma == F.lit(NULL_LEVEL))
    weight = F.when(is_null, F.lit(0.0))
    label = F.when(is_null, F.lit(NULL_LABEL))
    if comparison.ignore_disagreement:
        weight = weight.when(gamma == F.lit(0), F.lit(0.0))
    for level, (level_label, level_weight) in enumerate(
        zip(comparison.levels, weights, strict=True)
    ):
        weight = weight.when(gamma == F.lit(level), F.lit(level_weight))
        label = label.when(gamma == F.lit(level), F.lit(level_label))
    weight = weight.otherwise(_out_of_range(gamma, comparison))
    label = label.otherwise(_out_of_range(gamma, comparison))
    tf_adjustment: Column = F.lit(0.0)
    if comparison.tf_adjusted:
        # Relative to the mean tf of chance agreements when the model has it (trained over all
        # pairs), else to u_exact (Splink's form).
        reference = model.tf_reference.get(
            comparison.name, model.u[comparison.name][comparison.top_level]
        )
        tf = F.col(tf_column(comparison.name)).cast("double")
        # least/greatest skip nulls, so the null test comes first.
        clamped = F.least(F.greatest(tf, F.lit(TF_FLOOR)), F.lit(1.0))
        tf_adjustment = F.when(
            (gamma == F.lit(comparison.top_level)) & tf.isNotNull(),
            F.log2(F.lit(reference) / clamped),
        ).otherwise(F.lit(0.0))
    contribution = weight.cast("double") + tf_adjustment
    if comparison.max_weight is not None:
        contribution = F.least(contribution, F.lit(comparison.max_weight))
    return F.struct(
        F.lit(comparison.name).alias("comparison"),
        label.alias("level"),
        contribution.alias("weight"),
        tf_adjustment.alias("tf_adjustment"),
    )


def score_pairs(gammas: DataFrame, model: FellegiSunterModel) -> DataFrame:
    """Add `evidence`, `match_weight` and `match_probability` to pairs with comparison levels.

    Requires `gamma_<name>` per comparison and `tf_<name>` per tf-adjusted one. `evidence` is
    `array<struct<comparison, level, weight, tf_adjustment>>` in comparison order: the level's
    label ("null" for -1 or null, which weighs 0) and its whole contribution `weight` =
    log2(m / u) + `tf_adjustment`, where tf_adjustment = log2(u_exact / clamp(tf, 1e-12, 1)) at
    the exact level of a tf-adjusted comparison with a non-null tf, else 0.
    match_weight = log2(prior / (1 - prior)) + sum of the evidence weights; match_probability
    = 2^w / (1 + 2^w). A level outside -1..k fails the Spark job with a message naming the
    column. Example::

        scored_pairs = score_pairs(candidate_gammas, result.model)
    """
    _require_gamma_columns(gammas, model.comparisons, with_tf=True)
    weights = model.weights()
    evidence = F.array(*[_contribution(x, model, weights[x.name]) for x in model.comparisons])
    total = F.aggregate(
        F.col(c.EVIDENCE), F.lit(0.0), lambda acc, item: acc + item.getField("weight")
    )
    return (
        gammas.withColumn(c.EVIDENCE, evidence)
        .withColumn(c.MATCH_WEIGHT, F.lit(model.prior_weight) + total)
        .withColumn(c.MATCH_PROBABILITY, probability_from_weight(F.col(c.MATCH_WEIGHT)))
    )
