"""The three standardisers end to end on small frames: inputs and whole expected rows side by
side (nulls, blanks, full-width, Han and pinyin included), the output schemas, that no raw
identity or card number leaves, and Hypothesis properties (never raising, null-preserving,
idempotent keys)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from stdnum.cn import ric, uscc

from features import columns as c
from features.config import StandardiseConfig
from features.standardise import standardise_accounts, standardise_logistics, standardise_payments

KEY = b"test-key"
CONFIG = StandardiseConfig()

ACCOUNTS_SCHEMA = (
    "account_id string, platform string, registered_at timestamp, shop_name string, "
    "legal_name string, id_type string, id_number string, phone string, email string, "
    "registration_ip string, device_id string, country string, province string, city string, "
    "address string"
)
PAYMENTS_SCHEMA = (
    "account_id string, instrument_type string, instrument_id string, holder_name string, "
    "bank_name string, added_at timestamp"
)
LOGISTICS_SCHEMA = (
    "account_id string, role string, contact_name string, contact_phone string, address string, "
    "city string, province string, postcode string, country string, shipment_count long, "
    "first_used_at timestamp, last_used_at timestamp"
)

ACCOUNTS_COLUMNS = [
    ("account_id", "string"),
    ("phone_e164", "string"),
    ("phone_valid", "boolean"),
    ("email_canonical", "string"),
    ("id_type", "string"),
    ("id_number_hash", "string"),
    ("id_number_fuzzy", "array<string>"),
    ("id_valid", "boolean"),
    ("id_region", "string"),
    ("birth_date", "date"),
    ("device_norm", "string"),
    ("ip_norm", "string"),
    ("ip_prefix", "string"),
    ("name_norm", "string"),
    ("name_tokens", "array<string>"),
    ("name_key", "string"),
    ("name_suffix", "string"),
    ("address_key", "string"),
    ("address_tokens", "array<string>"),
    ("country", "string"),
    ("province", "string"),
    ("city", "string"),
    ("city_key", "string"),
]
PAYMENTS_COLUMNS = [
    ("account_id", "string"),
    ("instrument_type", "string"),
    ("instrument_hash", "string"),
    ("instrument_last4", "string"),
    ("instrument_valid", "boolean"),
    ("issuer_prefix", "string"),
    ("holder_name_key", "string"),
]
LOGISTICS_COLUMNS = [
    ("account_id", "string"),
    ("role", "string"),
    ("contact_phone_e164", "string"),
    ("address_key", "string"),
    ("address_tokens", "array<string>"),
    ("postcode_norm", "string"),
    ("contact_name_key", "string"),
    ("city", "string"),
]


def _rows(frame: DataFrame) -> dict[str, dict[str, Any]]:
    """Rows by `account_id` (unique in these tests), as dicts."""
    return {row[c.ACCOUNT_ID]: row.asDict() for row in frame.collect()}


def _hmac(message: str) -> str:
    return hmac.new(KEY, message.encode(), hashlib.sha256).hexdigest()


def _fuzzy(number: str) -> list[str]:
    variants = [number] + [number[:i] + number[i + 1 :] for i in range(len(number))]
    return [_hmac(f"iddel:{variant}") for variant in dict.fromkeys(variants)]


def _account(account_id: str, **values: Any) -> tuple[Any, ...]:
    names = [column.split()[0] for column in ACCOUNTS_SCHEMA.split(", ")]
    return tuple(account_id if name == "account_id" else values.get(name) for name in names)


# A female RIC (check character X), a USCC and their broken forms.
RIC_NUMBER = "11010519491231002X"
RIC_BAD_CHECK = RIC_NUMBER[:-1] + "1"
USCC_NUMBER = "91110000600037341L"
USCC_BAD_CHECK = USCC_NUMBER[:-1] + "M"
SHENZHEN = ["101", "8", "ji", "ke", "nan", "road", "shan", "shen", "yuan", "zhen"]


def test_reference_numbers_are_what_they_claim() -> None:
    assert ric.is_valid(RIC_NUMBER) and not ric.is_valid(RIC_BAD_CHECK)
    assert uscc.is_valid(USCC_NUMBER) and not uscc.is_valid(USCC_BAD_CHECK)


def test_standardise_accounts(spark: SparkSession) -> None:
    accounts = spark.createDataFrame(
        [
            _account(
                "a1",
                legal_name="张伟",
                id_type=" cn_ric ",
                id_number=RIC_NUMBER.lower(),
                phone="+86 138-0013-8000",
                email=" Zhang.Wei+shop@Gmail.com ",
                registration_ip=" 10.1.2.3 ",
                device_id="DEV-6",
                country="cn",
                province=" 广东 ",
                city="深圳",
                address="广东省深圳市南山区科技园路8号101室",
            ),
            _account(
                "a2",
                legal_name="Zhang Wei",
                id_type="CN_RIC",
                id_number="1101 0519 4912 3100 2x",
                phone="１３８００１３８０００",
                registration_ip="2001:DB8:1:2::5",
                city=" Shenzhen City ",
                address="Room 101, No. 8 Kejiyuan Road, Nanshan District, Shenzhen, Guangdong",
            ),
            _account(
                "a3",
                legal_name="WEI ZHANG",
                id_type="CN_USCC",
                id_number=USCC_NUMBER.lower(),
                city="SHENZHEN",
                address="深圳 南山 科技园路 No.８ 101室",
            ),
            _account(
                "a4",
                legal_name="zhangwei",
                id_type="CN_USCC",
                id_number=USCC_BAD_CHECK,
                city="深圳市",
                address="rm 101, 8 kejiyuan rd, nanshan, shenzhen",
            ),
            _account(
                "a5", legal_name="深圳市华强电子有限公司", id_type="CN_RIC", id_number=RIC_BAD_CHECK
            ),
            _account("a6", legal_name="Mr. Acme Trading Co., Ltd.", id_type="PASSPORT"),
            _account("a7", legal_name="ＺＨＡＮＧ　ＷＥＩ", id_type="   ", id_number="   "),
            _account("a8"),
        ],
        ACCOUNTS_SCHEMA,
    )
    standardised = standardise_accounts(accounts, hash_key=KEY, config=CONFIG)
    assert [(f.name, f.dataType.simpleString()) for f in standardised.schema] == ACCOUNTS_COLUMNS
    rows = _rows(standardised)

    ric_hash = _hmac(f"id:{RIC_NUMBER}")
    born = datetime.date(1949, 12, 31)
    nulls = {name: None for name, _ in ACCOUNTS_COLUMNS}
    wei_zhang = {c.NAME_TOKENS: ["wei", "zhang"], c.NAME_KEY: "wei zhang"}
    shenzhen = {c.ADDRESS_KEY: " ".join(SHENZHEN), c.ADDRESS_TOKENS: SHENZHEN}
    expected = {
        "a1": {
            **nulls,
            **wei_zhang,
            **shenzhen,
            c.ACCOUNT_ID: "a1",
            c.PHONE_E164: "+8613800138000",
            c.PHONE_VALID: True,
            c.EMAIL_CANONICAL: "zhangwei@gmail.com",
            c.ID_TYPE: "CN_RIC",
            c.ID_NUMBER_HASH: ric_hash,
            c.ID_NUMBER_FUZZY: _fuzzy(RIC_NUMBER),
            c.ID_VALID: True,
            c.ID_REGION: "110105",
            c.BIRTH_DATE: born,
            c.DEVICE_NORM: "dev6",
            c.IP_NORM: "10.1.2.3",
            c.IP_PREFIX: "10.1.2.0/24",
            c.NAME_NORM: "张伟",
            c.COUNTRY: "CN",
            c.PROVINCE: "广东",
            c.CITY: "深圳",
            c.CITY_KEY: "shen zhen",
        },
        "a2": {
            **nulls,
            **wei_zhang,
            **shenzhen,
            c.ACCOUNT_ID: "a2",
            c.PHONE_E164: "+8613800138000",
            c.PHONE_VALID: True,
            c.ID_TYPE: "CN_RIC",
            c.ID_NUMBER_HASH: ric_hash,
            c.ID_NUMBER_FUZZY: _fuzzy(RIC_NUMBER),
            c.ID_VALID: True,
            c.ID_REGION: "110105",
            c.BIRTH_DATE: born,
            c.IP_NORM: "2001:db8:1:2::5",
            c.IP_PREFIX: "2001:db8:1::/48",
            c.NAME_NORM: "zhang wei",
            c.CITY: "shenzhen city",
            c.CITY_KEY: "shen zhen",
        },
        "a3": {
            **nulls,
            **wei_zhang,
            **shenzhen,
            c.ACCOUNT_ID: "a3",
            c.PHONE_VALID: False,
            c.ID_TYPE: "CN_USCC",
            c.ID_NUMBER_HASH: _hmac(f"id:{USCC_NUMBER}"),
            c.ID_NUMBER_FUZZY: _fuzzy(USCC_NUMBER),
            c.ID_VALID: True,
            c.NAME_NORM: "wei zhang",
            c.CITY: "shenzhen",
            c.CITY_KEY: "shen zhen",
        },
        "a4": {
            **nulls,
            **wei_zhang,
            **shenzhen,
            c.ACCOUNT_ID: "a4",
            c.PHONE_VALID: False,
            c.ID_TYPE: "CN_USCC",
            c.ID_NUMBER_HASH: _hmac(f"id:{USCC_BAD_CHECK}"),
            c.ID_NUMBER_FUZZY: _fuzzy(USCC_BAD_CHECK),
            c.ID_VALID: False,
            c.NAME_NORM: "zhangwei",
            c.CITY: "深圳市",
            c.CITY_KEY: "shen zhen",
        },
        "a5": {
            **nulls,
            c.ACCOUNT_ID: "a5",
            c.PHONE_VALID: False,
            c.ID_TYPE: "CN_RIC",
            c.ID_NUMBER_HASH: _hmac(f"id:{RIC_BAD_CHECK}"),
            c.ID_NUMBER_FUZZY: _fuzzy(RIC_BAD_CHECK),
            c.ID_VALID: False,
            c.NAME_NORM: "深圳市华强电子有限公司",
            c.NAME_TOKENS: ["dian", "hua", "qiang", "shen", "shi", "zhen", "zi"],
            c.NAME_KEY: "dian hua qiang shen shi zhen zi",
            c.NAME_SUFFIX: "有限公司",
        },
        "a6": {
            **nulls,
            c.ACCOUNT_ID: "a6",
            c.PHONE_VALID: False,
            c.ID_TYPE: "PASSPORT",
            c.NAME_NORM: "mr. acme trading co., ltd.",
            c.NAME_TOKENS: ["acme"],
            c.NAME_KEY: "acme",
            c.NAME_SUFFIX: "trading co., ltd",
        },
        "a7": {
            **nulls,
            **wei_zhang,
            c.ACCOUNT_ID: "a7",
            c.PHONE_VALID: False,
            c.NAME_NORM: "zhang wei",
        },
        "a8": {**nulls, c.ACCOUNT_ID: "a8", c.PHONE_VALID: False},
    }
    assert rows == expected
    # No raw identity number anywhere in the output, in any form.
    text = repr(rows).upper()
    for number in (RIC_NUMBER, RIC_BAD_CHECK, USCC_NUMBER, USCC_BAD_CHECK):
        assert number not in text and number[:-1] not in text and number[1:] not in text


def test_birth_date_falls_back_to_date_of_birth(spark: SparkSession) -> None:
    values = [
        ("b1", "CN_RIC", RIC_NUMBER, "1990-02-03"),  # the RIC's date wins
        ("b2", "PASSPORT", "E12345678", "19900203"),
        ("b3", "PASSPORT", None, " 1990-02-03 "),
        ("b4", "OTHER", None, "１９９０-０２-０３"),
        ("b5", "CN_RIC", RIC_BAD_CHECK, "2001-01-01"),  # an invalid RIC gives no date
        ("b6", "OTHER", None, "19900230"),  # no such day
        ("b7", "OTHER", None, "1990-2-3"),
        ("b8", "OTHER", None, "03/02/1990"),
        ("b9", "OTHER", None, ""),
        ("b10", "OTHER", None, None),
    ]
    base = spark.createDataFrame(
        [_account(i, id_type=t, id_number=n) for i, t, n, _ in values], ACCOUNTS_SCHEMA
    )
    births = spark.createDataFrame(
        [(i, dob) for i, _, _, dob in values], "account_id string, date_of_birth string"
    )
    rows = _rows(standardise_accounts(base.join(births, c.ACCOUNT_ID), hash_key=KEY, config=CONFIG))
    assert {i: row[c.BIRTH_DATE] for i, row in rows.items()} == {
        "b1": datetime.date(1949, 12, 31),
        "b2": datetime.date(1990, 2, 3),
        "b3": datetime.date(1990, 2, 3),
        "b4": datetime.date(1990, 2, 3),
        "b5": datetime.date(2001, 1, 1),
        "b6": None,
        "b7": None,
        "b8": None,
        "b9": None,
        "b10": None,
    }
    # A date column is taken as it is; without the column only RIC numbers give a date.
    as_date = births.selectExpr("account_id", "try_to_date(date_of_birth) AS date_of_birth")
    dated = _rows(
        standardise_accounts(base.join(as_date, c.ACCOUNT_ID), hash_key=KEY, config=CONFIG)
    )
    assert dated["b3"][c.BIRTH_DATE] == datetime.date(1990, 2, 3)
    without = _rows(standardise_accounts(base, hash_key=KEY, config=CONFIG))
    assert {i for i, row in without.items() if row[c.BIRTH_DATE] is not None} == {"b1"}


def test_standardise_payments(spark: SparkSession) -> None:
    payments = spark.createDataFrame(
        [
            ("p1", "card", "4111 1111 1111 1111", "张伟", None, None),
            ("p2", " CARD ", "４１１１－１１１１－１１１１－１１１１", "WEI ZHANG", None, None),
            ("p3", "card", "6222021234567890", "Mr Zhang Wei", None, None),  # fails Luhn
            ("p4", "card", "0", None, None, None),  # passes Luhn, but no card has one digit
            ("p5", "card", "no digits", None, None, None),
            ("p6", "bank_account", "6222 0212 3456 7890 123", "深圳市华强电子有限公司", None, None),
            ("p7", "alipay", " Seller@Example.com ", "王女士", None, None),
            ("p8", "wallet", "12345678901234", "   ", None, None),
        ],
        PAYMENTS_SCHEMA,
    )
    standardised = standardise_payments(payments, hash_key=KEY)
    assert [(f.name, f.dataType.simpleString()) for f in standardised.schema] == PAYMENTS_COLUMNS
    rows = _rows(standardised)
    visa = _hmac("pay:4111111111111111")
    assert {i: tuple(row.values())[1:] for i, row in rows.items()} == {
        "p1": ("card", visa, "1111", True, "411111", "wei zhang"),
        "p2": ("card", visa, "1111", True, "411111", "wei zhang"),
        "p3": ("card", _hmac("pay:6222021234567890"), "7890", False, "622202", "wei zhang"),
        "p4": ("card", _hmac("pay:0"), None, False, None, None),
        "p5": ("card", None, None, None, None, None),
        "p6": (
            "bank_account",
            _hmac("pay:6222021234567890123"),
            "0123",
            None,
            "622202",
            "dian hua qiang shen shi zhen zi",
        ),
        "p7": ("alipay", _hmac("pay:seller@example.com"), None, None, None, "wang"),
        "p8": ("wallet", _hmac("pay:12345678901234"), None, None, None, None),
    }
    text = repr(rows)
    for number in ("4111111111111111", "6222021234567890", "6222021234567890123"):
        assert number not in text and number[:-4] not in text


def test_standardise_logistics(spark: SparkSession) -> None:
    logistics = spark.createDataFrame(
        [
            ("l1", "Return ", "王女士", "+86 138-0013-8000", "广东省深圳市南山区科技园路8号101室")
            + ("深圳", "广东", "518 057", "CN", 3, None, None),
            ("l2", "return", "Wang", "0086 13800138000")
            + ("Rm 101, 8 Kejiyuan Rd, Nanshan, Shenzhen, Guangdong Province", " SHENZHEN ")
            + (None, "５１８０５７", "CN", 1, None, None),
            ("l3", "WAREHOUSE", "Acme Trading Co., Ltd.", "2125550123", "10 Downing St, Flat 2")
            + ("London", None, " sw1a 2aa ", "US", None, None, None),
            ("l4", "pickup", None, None, None, None, None, None, None, None, None, None),
            ("l5", "pickup", "  ", "", "  ，  ", "  ", None, "  ", None, None, None, None),
        ],
        LOGISTICS_SCHEMA,
    )
    standardised = standardise_logistics(logistics, config=CONFIG)
    assert [(f.name, f.dataType.simpleString()) for f in standardised.schema] == LOGISTICS_COLUMNS
    rows = _rows(standardised)
    shenzhen = (" ".join(SHENZHEN), SHENZHEN)
    assert {i: tuple(row.values())[1:] for i, row in rows.items()} == {
        "l1": ("return", "+8613800138000", *shenzhen, "518057", "wang", "深圳"),
        "l2": ("return", "+8613800138000", *shenzhen, "518057", "wang", "shenzhen"),
        "l3": (
            "warehouse",
            "+12125550123",
            "10 2 downing flat street",
            ["10", "2", "downing", "flat", "street"],
            "SW1A2AA",
            "acme",
            "london",
        ),
        "l4": ("pickup", None, None, None, None, None, None),
        "l5": ("pickup", None, None, None, None, None, None),
    }


# Properties ----------------------------------------------------------------------------------

_PROPERTY_SETTINGS = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=25)
_NAME_LIKE = st.lists(
    st.sampled_from(["张", "伟", "Zhang", "WEI", "有限公司", "Co., Ltd.", "Mr ", "先生", " "]),
    max_size=5,
).map("".join)
_ADDRESS_LIKE = st.lists(
    st.sampled_from(["广东省", "深圳市", "南山区", "科技园路", "８号", "Rd", "No.", "8", ", "]),
    max_size=7,
).map("".join)
_POSTCODE_LIKE = st.text("0123456789 ", max_size=8)
_ID_LIKE = st.one_of(st.from_regex(r"[0-9 ]{0,18}[0-9Xx]?", fullmatch=True), st.just(RIC_NUMBER))
_ID_TYPE = st.one_of(st.none(), st.sampled_from(["CN_RIC", "cn_uscc", " PASSPORT", "OTHER", ""]))


def _maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    return st.one_of(st.none(), strategy, _ANY_TEXT)


_ACCOUNT = st.tuples(
    _maybe(_NAME_LIKE),
    _ID_TYPE,
    _maybe(_ID_LIKE),
    _maybe(st.from_regex(r"\+?[0-9 \-]{5,16}", fullmatch=True)),
    _maybe(st.ip_addresses().map(str)),
    _maybe(_ADDRESS_LIKE),
)


@_PROPERTY_SETTINGS
@given(st.lists(_ACCOUNT, min_size=1, max_size=30))
def test_standardise_accounts_properties(
    spark: SparkSession, drawn: list[tuple[str | None, ...]]
) -> None:
    """Never raises; all-null fields give nulls; keys are fixed points; no raw number leaves."""
    accounts = spark.createDataFrame(
        [
            _account(
                f"a{i}",
                legal_name=name,
                id_type=id_type,
                id_number=number,
                phone=phone,
                registration_ip=ip,
                address=address,
            )
            for i, (name, id_type, number, phone, ip, address) in enumerate(drawn)
        ],
        ACCOUNTS_SCHEMA,
    )
    rows = _rows(standardise_accounts(accounts, hash_key=KEY, config=CONFIG))
    # Standardising the keys again (as names and addresses) gives the same keys.
    again = spark.createDataFrame(
        [
            _account(i, legal_name=row[c.NAME_KEY], address=row[c.ADDRESS_KEY])
            for i, row in rows.items()
        ],
        ACCOUNTS_SCHEMA,
    )
    rows_again = _rows(standardise_accounts(again, hash_key=KEY, config=CONFIG))
    for i, (name, id_type, number, phone, ip, address) in enumerate(drawn):
        row = rows[f"a{i}"]
        assert rows_again[f"a{i}"][c.NAME_KEY] == row[c.NAME_KEY], name
        assert rows_again[f"a{i}"][c.ADDRESS_KEY] == row[c.ADDRESS_KEY], address
        if name is None:
            assert row[c.NAME_KEY] is row[c.NAME_TOKENS] is row[c.NAME_SUFFIX] is None
        if address is None:
            assert row[c.ADDRESS_KEY] is row[c.ADDRESS_TOKENS] is None
        if ip is None:
            assert row[c.IP_PREFIX] is None
        if phone is None:
            assert (row[c.PHONE_E164], row[c.PHONE_VALID]) == (None, False)
        if number is None:
            assert row[c.ID_NUMBER_HASH] is row[c.ID_NUMBER_FUZZY] is row[c.ID_VALID] is None
        if id_type is None or id_type.strip().upper() not in ("CN_RIC", "CN_USCC"):
            assert row[c.ID_VALID] is row[c.ID_REGION] is row[c.BIRTH_DATE] is None
        digits = "".join(ch for ch in (number or "") if ch.isalnum())
        if len(digits) >= 8:
            assert digits.upper() not in repr(row).upper(), number


@_PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["card", "bank_account", "alipay", " Card"])),
            _maybe(st.from_regex(r"[0-9 \-]{0,22}", fullmatch=True)),
            _maybe(_NAME_LIKE),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_standardise_payments_properties(
    spark: SparkSession, drawn: list[tuple[str | None, ...]]
) -> None:
    payments = spark.createDataFrame(
        [(f"p{i}", *values, None, None) for i, values in enumerate(drawn)], PAYMENTS_SCHEMA
    )
    rows = _rows(standardise_payments(payments, hash_key=KEY))
    for i, (instrument_type, number, holder) in enumerate(drawn):
        row = rows[f"p{i}"]
        kind = None if instrument_type is None else instrument_type.strip().lower()
        if kind != "card":
            assert row[c.INSTRUMENT_VALID] is None, (instrument_type, number)
        if kind not in ("card", "bank_account"):
            assert row[c.ISSUER_PREFIX] is None
        if number is None:
            assert row[c.INSTRUMENT_HASH] is row[c.INSTRUMENT_VALID] is row[c.ISSUER_PREFIX] is None
        if holder is None:
            assert row[c.HOLDER_NAME_KEY] is None
        digits = "".join(ch for ch in (number or "") if ch.isdigit())
        if len(digits) >= 8:
            assert digits not in repr(row), number


@_PROPERTY_SETTINGS
@given(
    st.lists(
        st.tuples(_maybe(_NAME_LIKE), _maybe(_ADDRESS_LIKE), _maybe(_POSTCODE_LIKE)),
        min_size=1,
        max_size=30,
    )
)
def test_standardise_logistics_properties(
    spark: SparkSession, drawn: list[tuple[str | None, ...]]
) -> None:
    logistics = spark.createDataFrame(
        [
            (f"l{i}", "return", name, None, address, None, None, postcode, None, None, None, None)
            for i, (name, address, postcode) in enumerate(drawn)
        ],
        LOGISTICS_SCHEMA,
    )
    rows = _rows(standardise_logistics(logistics, config=CONFIG))
    for i, (name, address, postcode) in enumerate(drawn):
        row = rows[f"l{i}"]
        if address is None:
            assert row[c.ADDRESS_KEY] is row[c.ADDRESS_TOKENS] is None
        else:
            assert (row[c.ADDRESS_KEY] is None) == (row[c.ADDRESS_TOKENS] is None), address
        if row[c.ADDRESS_TOKENS] is not None:
            tokens = row[c.ADDRESS_TOKENS]
            assert tokens == sorted(set(tokens)), address
            assert sorted(set(row[c.ADDRESS_KEY].split(" "))) == tokens, address
        if name is None:
            assert row[c.CONTACT_NAME_KEY] is None
        if postcode is None:
            assert row[c.POSTCODE_NORM] is None
