"""Readers: dataset forms, missing datasets and columns, quarantine with reasons, counts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features import columns as c
from jobs.inputs import CONTRACT, REASONS, _conform, _is_blank, load_inputs, locate_dataset
from resolution.errors import InputError

ACCOUNTS_CSV = """account_id,registered_at,legal_name,id_type,id_number,phone
A1,2024-01-02T03:04:05,张伟,CN_RIC,11010519491231002x,+86 138-0013-8000
A2,2024-01-03,"Wei, Zhang",CN_RIC,,0086 13800138000
A3,2024-13-45,李娜,CN_RIC,110105194912310021,139
A4,,王芳,BADTYPE,,137
,,nobody,,,
"  ",,blank id,,,
A6,,陈静 a,,,136
A6,,陈静 b,,,136
A7,"broken ""quote,x,y,z,w
"""

PAYMENTS_CSV = """account_id,instrument_type,instrument_id
A1,card,6222 0212 3456 7890
A2,card,
A2,bitcoin,abc
A9,card,6222021234567899
A3,card,6222021234567811
"""


def _write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def _quarantine(loaded) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    rows = loaded.quarantine.collect()
    return sorted((r[c.DATASET], r[c.REASON], r[c.RECORD]) for r in rows)


@pytest.mark.parametrize("broadcast_ids", [100_000, 1], ids=["ids_broadcast", "rows_joined"])
def test_csv_malformed_rows_are_quarantined_with_reasons(
    spark: SparkSession, tmp_path: Path, broadcast_ids: int
) -> None:
    """The same rows are quarantined whether the unknown ids are broadcast or the rows joined
    with the accepted ids (two payment rows have unknown ids: A9, and A3 quarantined)."""
    _write(tmp_path, "accounts.csv", ACCOUNTS_CSV)
    _write(tmp_path, "payment_instruments.csv", PAYMENTS_CSV)
    loaded = load_inputs(spark, tmp_path, run_id="r1", broadcast_ids=broadcast_ids)

    accepted = sorted(r[c.ACCOUNT_ID] for r in loaded.accepted[c.ACCOUNTS].collect())
    assert accepted == ["A1", "A2", "A6"]
    assert sorted(r[c.LEGAL_NAME] for r in loaded.accepted[c.ACCOUNTS].collect()) == [
        "Wei, Zhang",
        "张伟",
        "陈静 a",
    ]
    reasons = [(d, r) for d, r, _ in _quarantine(loaded)]
    assert sorted(reasons) == sorted(
        [
            ("accounts", "registered_at: not a valid timestamp: 2024-13-45"),
            ("accounts", "id_type: not one of CN_RIC, CN_USCC, PASSPORT, OTHER: BADTYPE"),
            ("accounts", "account_id: missing"),
            ("accounts", "account_id: missing"),
            ("accounts", "account_id: duplicate of another accounts row"),
            ("accounts", "row: malformed CSV line"),
            ("payment_instruments", "instrument_id: missing"),
            (
                "payment_instruments",
                "instrument_type: not one of alipay, bank_account, card, wallet, other: bitcoin",
            ),
            (
                "payment_instruments",
                "account_id: not an accepted account (absent from accounts or quarantined)",
            ),
            (
                "payment_instruments",
                "account_id: not an accepted account (absent from accounts or quarantined)",
            ),
        ]
    )
    counts = loaded.counts
    assert (
        counts[c.ACCOUNTS].read,
        counts[c.ACCOUNTS].accepted,
        counts[c.ACCOUNTS].quarantined,
    ) == (9, 3, 6)
    assert (counts[c.PAYMENT_INSTRUMENTS].read, counts[c.PAYMENT_INSTRUMENTS].accepted) == (5, 1)
    assert counts[c.LOGISTICS].read == 0
    # Optional datasets that are absent come back empty with the contract's columns.
    assert loaded.accepted[c.LOGISTICS].columns[:2] == [c.ACCOUNT_ID, c.ROLE]


LOGISTICS_CSV = """account_id,role,address,contact_phone
A1,return,广东省深圳市南山区科技园路8号,13800138000
A2,pickup,somewhere,139
A9,return,unknown account,137
A6,teleport,bad role,136
"""

SIGNALS_CSV = """account_id,signal_type,signal_count
A1,rights_holder_complaint,3
A2,test_buy_counterfeit,-1
A9,customer_complaint,2
"""


def _loaded_rows(loaded) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Everything `load_inputs` returns, as sorted plain rows."""
    return {
        "accepted": {
            name: sorted(tuple(map(str, row)) for row in frame.collect())
            for name, frame in loaded.accepted.items()
        },
        "quarantine": _quarantine(loaded),
        "counts": loaded.counts,
        "sources": list(loaded.sources),
        "account_ids": sorted(r[c.ACCOUNT_ID] for r in loaded.account_ids.collect()),
        "quarantined_accounts": sorted(tuple(row) for row in loaded.quarantined_accounts.collect()),
    }


def test_datasets_checked_side_by_side_give_what_one_by_one_gives(
    spark: SparkSession, tmp_path: Path
) -> None:
    """After accounts, the other datasets are checked `workers` at a time: the accepted rows,
    the quarantine, the counts and the order of the sources are those of one at a time."""
    _write(tmp_path, "accounts.csv", ACCOUNTS_CSV)
    _write(tmp_path, "payment_instruments.csv", PAYMENTS_CSV)
    _write(tmp_path, "logistics.csv", LOGISTICS_CSV)
    _write(tmp_path, "enforcement_signals.csv", SIGNALS_CSV)
    one = load_inputs(spark, tmp_path, run_id="r1", workers=1)
    three = load_inputs(spark, tmp_path, run_id="r1", workers=3)
    assert _loaded_rows(three) == _loaded_rows(one)
    datasets = {dataset for dataset, _, _ in _quarantine(three)}
    assert datasets == {c.ACCOUNTS, c.PAYMENT_INSTRUMENTS, c.LOGISTICS, c.ENFORCEMENT_SIGNALS}
    assert list(three.sources) == list(c.INPUT_DATASETS)
    assert three.counts[c.LOGISTICS].read == 4
    assert three.counts[c.ENFORCEMENT_SIGNALS].read == 3
    one.release()
    three.release()


def test_quarantine_records_hold_no_raw_numbers(spark: SparkSession, tmp_path: Path) -> None:
    _write(tmp_path, "accounts.csv", ACCOUNTS_CSV)
    _write(tmp_path, "payment_instruments.csv", PAYMENTS_CSV)
    loaded = load_inputs(spark, tmp_path, run_id="r1")
    records = [record for _, _, record in _quarantine(loaded)]
    text = "\n".join(records)
    for raw in ("110105194912310021", "6222021234567899", "6222021234567811", "11010519491231002x"):
        assert raw not in text
    card = next(json.loads(r) for r in records if '"A9"' in r)
    assert card["instrument_id"] == "****7899"


def test_parquet_and_delta_forms(spark: SparkSession, tmp_path: Path) -> None:
    accounts = pd.DataFrame(
        {
            "account_id": ["P1", "P2", "P2"],
            "registered_at": pd.to_datetime(["2024-01-01", "2024-02-01", None]),
            "phone": ["13800138000", None, "x"],
        }
    )
    accounts.to_parquet(tmp_path / "accounts.parquet")
    signals = spark.createDataFrame(
        [
            ("P1", "rights_holder_complaint", 3),
            ("P2", "test_buy_counterfeit", -1),
            ("P1", "weird", None),
        ],
        "account_id string, signal_type string, signal_count long",
    )
    signals.write.format("delta").save(str(tmp_path / "enforcement_signals"))
    loaded = load_inputs(spark, tmp_path, run_id="r2")
    assert loaded.sources[c.ACCOUNTS].endswith("accounts.parquet")
    assert loaded.sources[c.ENFORCEMENT_SIGNALS].endswith("enforcement_signals")
    assert sorted(
        (r[c.ACCOUNT_ID], str(r[c.REGISTERED_AT])) for r in loaded.accepted[c.ACCOUNTS].collect()
    ) == [("P1", "2024-01-01 00:00:00"), ("P2", "None")]  # kept: the row whose record sorts first
    assert [
        tuple(r)
        for r in loaded.accepted[c.ENFORCEMENT_SIGNALS]
        .select(c.ACCOUNT_ID, c.SIGNAL_COUNT)
        .collect()
    ] == [("P1", 3)]
    assert sorted(r for _, r, _ in _quarantine(loaded)) == [
        "account_id: duplicate of another accounts row",
        "signal_count: negative",
        "signal_type: not one of rights_holder_complaint, customer_complaint, "
        "test_buy_counterfeit, listing_takedown, other: weird",
    ]
    for name, counts in loaded.counts.items():
        assert counts.read == counts.accepted + counts.quarantined, name


def test_missing_required_column_names_file_and_column(spark: SparkSession, tmp_path: Path) -> None:
    _write(tmp_path, "accounts.csv", "account_id,phone\nA1,1\n")
    _write(tmp_path, "logistics.csv", "account_id,address\nA1,somewhere\n")
    with pytest.raises(InputError) as error:
        load_inputs(spark, tmp_path, run_id="r3")
    message = str(error.value)
    assert str(tmp_path / "logistics.csv") in message
    assert "'role'" in message
    assert "found: account_id, address" in message


def test_missing_accounts_dataset(spark: SparkSession, tmp_path: Path) -> None:
    _write(tmp_path, "logistics.csv", "account_id,role\nA1,return\n")
    with pytest.raises(InputError, match="required dataset 'accounts' not found"):
        load_inputs(spark, tmp_path, run_id="r4")


def test_dataset_given_twice_is_ambiguous(tmp_path: Path) -> None:
    _write(tmp_path, "accounts.csv", "account_id\nA1\n")
    pd.DataFrame({"account_id": ["A1"]}).to_parquet(tmp_path / "accounts.parquet")
    with pytest.raises(InputError, match="more than once"):
        locate_dataset(tmp_path, "accounts")
    assert locate_dataset(tmp_path, "logistics") is None


def test_csv_with_byte_order_mark_crlf_time_zones_and_extra_columns(
    spark: SparkSession, tmp_path: Path
) -> None:
    text = (
        "\ufeffextra,account_id,shop_name,registered_at\r\n"
        'x,B1,"Shop ""one"", best\r\ngoods",2023-03-10 10:00:00+08:00\r\n'
        "y,B2,plain,2023-03-10T02:00:00Z\r\n"
    )
    (tmp_path / "accounts.csv").write_bytes(text.encode("utf-8"))
    loaded = load_inputs(spark, tmp_path, run_id="r5")
    rows = sorted(
        (r[c.ACCOUNT_ID], r[c.SHOP_NAME], str(r[c.REGISTERED_AT]))
        for r in loaded.accepted[c.ACCOUNTS].collect()
    )
    assert rows == [
        ("B1", 'Shop "one", best\ngoods', "2023-03-10 02:00:00"),  # Spark folds CRLF
        ("B2", "plain", "2023-03-10 02:00:00"),
    ]
    assert loaded.counts[c.ACCOUNTS].quarantined == 0


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        ("   ", True),
        ("\t\r\n", True),
        ("\u3000\u00a0", True),  # ideographic and no-break spaces
        ("\u200b\ufeff", True),  # zero-width space, byte-order mark
        ("a", False),
        ("  a  ", False),
        ("~", False),
        ("\u3000张伟", False),
        ("张伟", False),
        ("\u200bx", False),
    ],
)
def test_blank_text_is_whitespace_separators_control_and_format_only(
    spark: SparkSession, text: str, blank: bool
) -> None:
    row = spark.createDataFrame([(text,)], "t string").select(_is_blank(F.col("t"))).first()
    assert row is not None and row[0] is blank


def test_bytes_that_are_not_utf8_are_found_in_each_text_column(spark: SparkSession) -> None:
    # A value ending in a lead byte and the next starting with continuation bytes would make a
    # valid character if joined directly: each is still reported, and only those.
    raw = spark.createDataFrame(
        [
            ("a1", bytearray(b"shop \xe4"), bytearray(b"\xb8\xad name"), bytearray(b"ok")),
            ("a2", bytearray(b"shop"), bytearray(b"name"), bytearray(b"\xff")),
            ("a3", bytearray(b"shop"), bytearray(b"name"), bytearray(b"fine")),
        ],
        "account_id string, shop_name binary, legal_name binary, email binary",
    ).select(
        "account_id",
        *[F.col(name).cast("string").alias(name) for name in ("shop_name", "legal_name", "email")],
    )
    conformed = _conform(raw, CONTRACT[c.ACCOUNTS], Path("accounts.parquet"))
    reasons = {r[c.ACCOUNT_ID]: list(r[REASONS]) for r in conformed.frame.collect()}
    not_utf8 = "{}: not valid UTF-8 text (bytes that are not UTF-8)"
    assert reasons == {
        "a1": [not_utf8.format("shop_name"), not_utf8.format("legal_name")],
        "a2": [not_utf8.format("email")],
        "a3": [],
    }
