"""Standardisers: inline inputs and expected values side by side, nulls and Unicode included."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features.email import email_canonical
from features.hashing import hmac_sha256_hex
from features.identity import id_number_norm, instrument_hash, instrument_norm, last_four
from features.network import device_norm, ip_norm
from features.phone import parse_phone, phone_e164
from features.text import clean_text, compact_key, digits_only, to_half_width

KEY = b"test-key"


def _apply(spark: SparkSession, values: list[str | None], fn) -> list:  # type: ignore[no-untyped-def]
    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    rows = frame.select("i", fn(F.col("v")).alias("out")).orderBy("i").collect()
    return [row["out"] for row in rows]


def test_text_normalisers(spark: SparkSession) -> None:
    cases = [
        (None, None, None, None, None),
        ("", "", None, None, None),
        ("   ", "   ", None, None, None),
        ("ＡＢＣ　１２３", "ABC 123", "abc 123", "abc123", "123"),
        (
            "  Shen Zhen  Rd. No.8 ",
            "  Shen Zhen  Rd. No.8 ",
            "shen zhen rd. no.8",
            "shenzhenrdno8",
            "8",
        ),
        (
            "深圳市 南山区，科技园８号",
            "深圳市 南山区,科技园8号",
            "深圳市 南山区,科技园8号",
            "深圳市南山区科技园8号",
            "8",
        ),
    ]
    values = [case[0] for case in cases]
    assert _apply(spark, values, to_half_width) == [case[1] for case in cases]
    assert _apply(spark, values, clean_text) == [case[2] for case in cases]
    assert _apply(spark, values, compact_key) == [case[3] for case in cases]
    assert _apply(spark, values, digits_only) == [case[4] for case in cases]


def test_email_canonical(spark: SparkSession) -> None:
    cases = {
        None: None,
        "": None,
        "not-an-email": None,
        "a@@b.com": None,
        " Zhang.Wei+shop1@Gmail.com ": "zhangwei@gmail.com",
        "zhang.wei@googlemail.com": "zhangwei@gmail.com",
        "Li.Na+x@qq.com": "li.na+x@qq.com",
        "li.na+tag@outlook.com": "li.na@outlook.com",
        "ｗａｎｇ＠１６３．ｃｏｍ": "wang@163.com",
    }
    assert _apply(spark, list(cases), email_canonical) == list(cases.values())


def test_parse_phone_variants() -> None:
    expected = ("+8613800138000", True)
    for typed in ("+86 138-0013-8000", "0086 13800138000", "13800138000", "138 0013 8000"):
        assert parse_phone(typed, "CN") == expected, typed
    assert parse_phone("2125550123", "US") == ("+12125550123", True)
    assert parse_phone(None, "CN") == (None, False)
    assert parse_phone("   ", "CN") == (None, False)
    assert parse_phone("hello", "CN") == (None, False)
    assert parse_phone("12", "CN") == (None, False)


def test_phone_column_uses_row_country_and_full_width(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [
            (1, "１３８００１３８０００", None),
            (2, "2125550123", "us"),
            (3, "13800138000", "XYZ"),
            (4, None, "CN"),
            (5, "", "CN"),
        ],
        "i int, phone string, country string",
    )
    rows = (
        frame.select("i", phone_e164(F.col("phone"), country=F.col("country")).alias("p"))
        .orderBy("i")
        .collect()
    )
    assert [(r["p"]["e164"], r["p"]["valid"]) for r in rows] == [
        ("+8613800138000", True),
        ("+12125550123", True),
        ("+8613800138000", True),
        (None, False),
        (None, False),
    ]


def test_hmac_matches_python_hmac(spark: SparkSession) -> None:
    values = [None, "", "6222021234567890", "张伟-110105", "x" * 300]
    for key in (KEY, b"k" * 100):  # short key and a key longer than the SHA-256 block
        got = _apply(spark, values, lambda col, key=key: hmac_sha256_hex(col, key=key))
        want = [
            None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
            for v in values
        ]
        assert got == want


def test_hmac_rejects_empty_key() -> None:
    with pytest.raises(ValueError, match="key"):
        hmac_sha256_hex(F.col("x"), key=b"")


def test_identity_and_instrument_numbers(spark: SparkSession) -> None:
    assert _apply(
        spark,
        [None, " 11010519491231002x ", "1101-0519 4912-3100 2X", "１１０１０５"],
        id_number_norm,
    ) == [None, "11010519491231002X", "11010519491231002X", "110105"]
    frame = spark.createDataFrame(
        [
            (1, "card", "6222 0212 3456 7890"),
            (2, "card", "6222-0212-3456-7890"),
            (3, "bank_account", "６２２２０２１２３４５６７８９０"),
            (4, "alipay", " Seller@Example.com "),
            (5, "card", None),
            (6, "wallet", "12"),
        ],
        "i int, t string, raw string",
    )
    rows = (
        frame.select(
            "i",
            instrument_norm(F.col("t"), F.col("raw")).alias("norm"),
            instrument_hash(F.col("t"), F.col("raw"), key=KEY).alias("hash"),
            last_four(F.col("t"), F.col("raw")).alias("last4"),
        )
        .orderBy("i")
        .collect()
    )
    assert [r["norm"] for r in rows] == [
        "6222021234567890",
        "6222021234567890",
        "6222021234567890",
        "seller@example.com",
        None,
        "12",
    ]
    card_hash = hmac.new(KEY, b"pay:6222021234567890", hashlib.sha256).hexdigest()
    assert [r["hash"] for r in rows][:3] == [card_hash] * 3
    assert rows[4]["hash"] is None
    assert [r["last4"] for r in rows] == ["7890", "7890", "7890", None, None, None]


def test_ip_and_device(spark: SparkSession) -> None:
    assert _apply(
        spark,
        [None, " 10.0.0.1 ", "256.1.1.1", "2001:DB8::1", "not an ip", "１０.０.０.２"],
        ip_norm,
    ) == [None, "10.0.0.1", None, "2001:db8::1", None, "10.0.0.2"]
    assert _apply(spark, [None, "", "DEV-6", "dev 6", "--"], device_norm) == [
        None,
        None,
        "dev6",
        "dev6",
        None,
    ]


_PROPERTY_SETTINGS = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=40))
def test_normalisers_are_idempotent_and_null_preserving(
    spark: SparkSession, values: list[str | None]
) -> None:
    normalisers = (clean_text, compact_key, email_canonical, id_number_norm, device_norm)
    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    outputs = []
    for n, normaliser in enumerate(normalisers):
        once = normaliser(F.col("v"))
        outputs += [once.alias(f"once_{n}"), normaliser(once).alias(f"twice_{n}")]
    rows = frame.select("i", "v", *outputs).orderBy("i").collect()  # one Spark job per example
    for row in rows:
        for n, normaliser in enumerate(normalisers):
            assert row[f"once_{n}"] == row[f"twice_{n}"], (normaliser.__name__, row["v"])
            if row["v"] is None:
                assert row[f"once_{n}"] is None, normaliser.__name__


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.text(max_size=25), st.from_regex(r"\+?[0-9 \-]{5,16}", fullmatch=True))
)
def test_parse_phone_never_raises_and_is_idempotent(raw: str | None) -> None:
    e164, valid = parse_phone(raw, "CN")
    if e164 is None:
        assert valid is False
    else:
        assert parse_phone(e164, "CN") == (e164, valid)


def test_parse_phone_rejects_numbers_whose_e164_is_unstable() -> None:
    # Found by the property test: "000000000" formatted to "+860000000", which parses to
    # "+8600000000"; such keys would not be idempotent.
    assert parse_phone("000000000", "CN") == (None, False)
