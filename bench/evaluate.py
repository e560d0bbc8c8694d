"""Pairwise (and B-cubed) accuracy of a clustering against the truth, in pandas.

The benchmark judges both tools with this one function, from their `account_id -> cluster`
tables. Pairs are never enumerated: with n_ij accounts in the cell (predicted cluster i, true
entity j), a_i accounts in cluster i and b_j in entity j,

    true positive pairs = sum over cells of n_ij (n_ij - 1) / 2
    predicted pairs     = sum over clusters of a_i (a_i - 1) / 2
    true pairs          = sum over entities of b_j (b_j - 1) / 2

B-cubed (Bagga and Baldwin, 1998) averages per account |cluster & entity| / |cluster| and
/ |entity|, that is sum over cells of n_ij^2 / a_i (and / b_j) over the number of accounts.

The accounts judged are those of the truth. A truth account that the membership lacks (a
quarantined row, an account the tool dropped) counts as a cluster of its own, so that a tool
cannot gain by leaving accounts out; membership rows of accounts outside the truth are ignored.
(The job's own `eval_*` metrics count only accounts present in both; the two agree whenever the
job keeps every truth account.) Conventions as in resolution/evaluation.py: no predicted pairs
gives precision 1, no true pairs recall 1, and F1 is 0 when precision and recall both are.

Example::

    >>> import pandas as pd
    >>> truth = pd.DataFrame({"account_id": ["a", "b", "c"], "entity_id": ["T", "T", "U"]})
    >>> membership = pd.DataFrame({"account_id": ["a", "b", "c"], "cluster_id": [1, 1, 1]})
    >>> round(pairwise_scores(membership, truth, cluster_column="cluster_id").pairwise_precision, 3)
    0.333
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

ACCOUNT_ID = "account_id"
ENTITY_ID = "entity_id"


@dataclass(frozen=True)
class Scores:
    accounts: int
    missing_accounts: int  # truth accounts without membership (counted as singletons)
    predicted_pairs: int
    true_pairs: int
    true_positive_pairs: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    largest_cluster: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _ratio(numerator: float, denominator: float) -> float:
    return 1.0 if denominator == 0 else numerator / denominator


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _pairs(sizes: pd.Series) -> int:
    counts = sizes.astype("int64")
    return int((counts * (counts - 1) // 2).sum())


def pairwise_scores(
    membership: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    cluster_column: str = ENTITY_ID,
) -> Scores:
    """Scores of `membership` (`account_id`, `cluster_column`) against `truth` (`account_id`,
    `entity_id`). Each table must hold an account at most once."""
    for name, table, needed in (
        ("membership", membership, (ACCOUNT_ID, cluster_column)),
        ("truth", truth, (ACCOUNT_ID, ENTITY_ID)),
    ):
        missing = [column for column in needed if column not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks {missing}; columns found: {list(table.columns)}")
        if table[ACCOUNT_ID].duplicated().any():
            raise ValueError(f"{name} holds an account_id more than once")
    predicted = membership[[ACCOUNT_ID, cluster_column]].rename(
        columns={cluster_column: "predicted"}
    )
    # Cluster ids of the two sides may share values: keep them apart from the filler ids.
    predicted["predicted"] = "c:" + predicted["predicted"].astype(str)
    joined = truth[[ACCOUNT_ID, ENTITY_ID]].merge(predicted, on=ACCOUNT_ID, how="left")
    absent = joined["predicted"].isna()
    joined.loc[absent, "predicted"] = "missing:" + joined.loc[absent, ACCOUNT_ID].astype(str)

    cells = joined.groupby(["predicted", ENTITY_ID], sort=False).size().rename("n_ij")
    cells = cells.reset_index()
    cluster_sizes = cells.groupby("predicted", sort=False)["n_ij"].sum()
    entity_sizes = cells.groupby(ENTITY_ID, sort=False)["n_ij"].sum()
    accounts = int(cells["n_ij"].sum())
    tp = _pairs(cells["n_ij"])
    predicted_pairs = _pairs(cluster_sizes)
    true_pairs = _pairs(entity_sizes)
    precision = _ratio(tp, predicted_pairs)
    recall = _ratio(tp, true_pairs)
    n_ij = cells["n_ij"].astype("float64")
    a_i = cells["predicted"].map(cluster_sizes).astype("float64")
    b_j = cells[ENTITY_ID].map(entity_sizes).astype("float64")
    b_precision = _ratio(float((n_ij * n_ij / a_i).sum()), accounts)
    b_recall = _ratio(float((n_ij * n_ij / b_j).sum()), accounts)
    return Scores(
        accounts=accounts,
        missing_accounts=int(absent.sum()),
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        true_positive_pairs=tp,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        bcubed_precision=b_precision,
        bcubed_recall=b_recall,
        bcubed_f1=_f1(b_precision, b_recall),
        largest_cluster=int(cluster_sizes.max()) if len(cluster_sizes) else 0,
    )
