"""Names, identity and payment checks, addresses, IP prefixes: inputs and expected values side by
side (nulls, blanks, full-width and Unicode included), then property tests against stdnum and
`ipaddress`, each Hypothesis example evaluated in one Spark job."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from stdnum import luhn
from stdnum.cn import ric, uscc

from features.address import (
    address_key,
    address_normalised,
    address_parts,
    address_tokens,
    fold_separators,
    key_of_normalised,
    postcode_norm,
    romanised_address_key,
    romanised_address_tokens,
    romanised_tokens_value,
)
from features.identity import id_number_fuzzy
from features.identity_checks import (
    check_ric,
    check_uscc,
    normalise_number,
    ric_checks,
    uscc_valid,
)
from features.ip_prefix import ip_version, ipv4_prefix24, ipv6_prefix48
from features.names import (
    _pinyin_syllables,
    canonical_syllables,
    name_key,
    name_tokens,
    name_tokens_value,
    nfkc_casefold_value,
    segment_pinyin,
    strip_company_suffix,
)
from features.payment_checks import card_scheme, issuer_prefix, luhn_valid
from features.text import digits_only

Normaliser = Callable[[Column], Column]


def _apply(spark: SparkSession, values: list[Any], *functions: Normaliser) -> list[tuple[Any, ...]]:
    """Each function applied to each value, in one Spark job: a row of outputs per value."""
    frame = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    outputs = [fn(F.col("v")).alias(f"out_{n}") for n, fn in enumerate(functions)]
    rows = frame.select("i", *outputs).orderBy("i").collect()
    return [tuple(row[f"out_{n}"] for n in range(len(functions))) for row in rows]


def _fields(value: Any, names: tuple[str, ...]) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value[name] for name in names)


# Names ---------------------------------------------------------------------------------------


def test_name_key_and_tokens(spark: SparkSession) -> None:
    cases = [
        (None, None, None),
        ("", None, None),
        ("  \t ", None, None),
        ("--·--", None, None),
        ("张伟", "wei zhang", ["wei", "zhang"]),
        ("Zhang Wei", "wei zhang", ["wei", "zhang"]),
        ("WEI ZHANG", "wei zhang", ["wei", "zhang"]),
        ("zhangwei", "wei zhang", ["wei", "zhang"]),
        ("Ｚｈａｎｇ　Ｗｅｉ", "wei zhang", ["wei", "zhang"]),
        ("zhang-wei.", "wei zhang", ["wei", "zhang"]),
        ("李佳宁", "jia li ning", ["jia", "li", "ning"]),
        ("Li Jianing", "jia li ning", ["jia", "li", "ning"]),  # backtracks: jian|ing fails
        ("吕Lü", "lv lv", ["lv", "lv"]),
        ("John SMITH", "john smith", ["john", "smith"]),
        ("Straße 3", "3 strasse", ["3", "strasse"]),
        ("王 ①", "1 wang", ["1", "wang"]),
    ]
    got = _apply(spark, [case[0] for case in cases], name_key, name_tokens)
    assert got == [(key, tokens) for _, key, tokens in cases]


def test_segment_pinyin() -> None:
    assert segment_pinyin("zhangwei") == ("zhang", "wei")
    assert segment_pinyin("xian") == ("xian",)  # a syllable stays whole
    assert segment_pinyin("jianing") == ("jia", "ning")
    assert segment_pinyin("smith") is None
    assert segment_pinyin("") is None


def test_canonical_syllables() -> None:
    # The true syllables (from Han) and the segmenter's reading of the run-together word agree.
    for true, written in [
        (("he", "nan"), "henan"),  # 河南: the segmenter reads hen an
        (("jing", "an"), "jingan"),  # 静安
        (("xi", "an"), "xian"),  # 西安: the segmenter keeps one syllable
        (("yan", "an"), "yanan"),  # 延安
        (("bao", "an"), "baoan"),  # 宝安
        (("jia", "ning"), "jianing"),
    ]:
        segmented = segment_pinyin(written)
        assert segmented is not None
        assert canonical_syllables(true) == canonical_syllables(segmented), written
    assert canonical_syllables(("he", "nan")) == ("he", "nan")
    assert canonical_syllables(("hen", "an")) == ("he", "nan")
    assert canonical_syllables(("jing", "an")) == ("jin", "gan")
    assert canonical_syllables(("xi", "an")) == ("xian",)
    # Tokens that are not syllables (digits, Latin words) stop the rewriting.
    assert canonical_syllables(("xi", "8", "an", "island")) == ("xi", "8", "an", "island")
    assert canonical_syllables(()) == ()


def test_strip_company_suffix(spark: SparkSession) -> None:
    cases = [
        (None, (None, None, None)),
        ("", (None, None, None)),
        ("   ", (None, None, None)),
        ("深圳市华强电子有限公司", ("深圳市华强电子", "有限公司", None)),
        ("义乌小商品贸易有限责任公司", ("义乌小商品", "贸易有限责任公司", None)),
        ("杭州某某电子商务有限公司", ("杭州某某", "电子商务有限公司", None)),
        ("上海科技股份有限公司", ("上海", "科技股份有限公司", None)),
        ("老王商行", ("老王", "商行", None)),
        ("有限公司", ("有限", "公司", None)),  # the name keeps at least one character
        ("公司", ("公司", None, None)),
        ("Acme Trading Co., Ltd.", ("acme", "trading co., ltd", None)),
        ("ＡＣＭＥ　ＬＩＭＩＴＥＤ", ("acme", "limited", None)),
        ("Costco", ("costco", None, None)),
        ("Foo Inc", ("foo", "inc", None)),
        ("Bar LLC.", ("bar", "llc", None)),
        ("Mr. Zhang Wei", ("zhang wei", None, "mr")),
        ("MRS li", ("li", None, "mrs")),
        ("Dr Wang", ("wang", None, "dr")),
        ("Mr张", ("张", None, "mr")),  # a title against Han letters is still a title
        ("Drew Smith", ("drew smith", None, None)),  # a name starting like one is not
        ("张先生", ("张", None, "先生")),
        ("李 女士", ("李", None, "女士")),
        ("先生", ("先生", None, None)),
    ]
    names = ("name", "suffix", "honorific")
    got = _apply(spark, [case[0] for case in cases], strip_company_suffix)
    assert [_fields(row[0], names) for row in got] == [expected for _, expected in cases]


# Identity and payment checks -----------------------------------------------------------------


def _ric(region: str, born: datetime.date, sequence: int) -> str:
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def _uscc(body: str) -> str:
    return body + uscc.calc_check_digit(body)


def test_ric_checks_and_uscc(spark: SparkSession) -> None:
    female = _ric("110105", datetime.date(1949, 12, 31), 2)  # check character X
    assert female == "11010519491231002X"
    bad_check = female[:-1] + "1"
    bad_date = _ric("110105", datetime.date(1990, 1, 1), 1)[:10] + "1340" + "0011"
    unknown_region = _ric("990000", datetime.date(1990, 1, 1), 1)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in female.lower())
    born = datetime.date(1949, 12, 31)
    cases = [
        (None, (None, None, None)),
        ("", (None, None, None)),
        (" \t\u3000", (None, None, None)),
        (female, (True, born, "110105")),
        (female.lower(), (True, born, "110105")),
        (" 110105 19491231\t002x\n", (True, born, "110105")),
        (full_width, (True, born, "110105")),
        ("1101\u200b0519491231002X", (True, born, "110105")),
        (bad_check, (False, None, None)),
        (bad_date, (False, None, None)),
        (unknown_region, (False, None, None)),
        (female[:-1], (False, None, None)),
        ("张伟", (False, None, None)),
    ]
    names = ("valid", "birth_date", "region_code")
    got = _apply(spark, [case[0] for case in cases], ric_checks, uscc_valid)
    assert [_fields(row[0], names) for row in got] == [expected for _, expected in cases]
    assert [row[1] for row in got][:3] == [None, None, None]

    code = _uscc("91110000600037341")
    assert code == "91110000600037341L"
    uscc_cases = [
        (None, None),
        ("", None),
        ("   ", None),
        (code, True),
        (code.lower(), True),
        ("9111 0000 6000 3734\t1l", True),
        ("".join(chr(ord(c) + 0xFEE0) for c in code), True),
        (code[:-1] + "M", False),
        (code[:-1], False),
        (female, False),
    ]
    got = _apply(spark, [case[0] for case in uscc_cases], uscc_valid)
    assert [row[0] for row in got] == [expected for _, expected in uscc_cases]


def test_payment_checks(spark: SparkSession) -> None:
    cases = [
        # raw, luhn_valid, issuer_prefix, card_scheme
        (None, None, None, None),
        ("", None, None, None),
        ("   ", None, None, None),
        ("0", True, None, None),
        ("79927398713", True, None, None),  # the textbook example, 11 digits: not a card
        ("79927398710", False, None, None),
        ("4111 1111 1111 1111", True, "411111", "visa"),
        ("４１１１－１１１１－１１１１－１１１１", True, "411111", "visa"),
        ("5555555555554444", True, "555555", "mastercard"),
        ("2221000000000009", True, "222100", "mastercard"),
        ("2720990000000007", True, "272099", "mastercard"),
        ("2721000000000004", True, "272100", "other"),
        ("378282246310005", True, "378282", "amex"),
        ("3530111333300000", True, "353011", "jcb"),
        ("6222021234567890", False, "622202", "unionpay"),
        ("6011111111111117", True, "601111", "other"),
    ]
    got = _apply(
        spark,
        [case[0] for case in cases],
        lambda raw: luhn_valid(digits_only(raw)),
        lambda raw: issuer_prefix(digits_only(raw)),
        lambda raw: card_scheme(digits_only(raw)),
    )
    assert got == [case[1:] for case in cases]
    # Uncleaned input is not a digit string: no verdict rather than a wrong one.
    assert _apply(spark, ["4111 1111 1111 1111", "4111x"], luhn_valid, card_scheme) == [
        (None, None),
        (None, None),
    ]


def test_id_number_fuzzy(spark: SparkSession) -> None:
    key = b"test-key"

    def hashes(number: str) -> list[str]:
        variants = [number] + [number[:i] + number[i + 1 :] for i in range(len(number))]
        distinct = list(dict.fromkeys(variants))  # first occurrences, in order
        return [hmac.new(key, f"iddel:{v}".encode(), hashlib.sha256).hexdigest() for v in distinct]

    values = [None, "", "  ", "11010519491231002x", "1101 0519-4912 3100 2X", "11", "7"]
    got = _apply(spark, values, lambda raw: id_number_fuzzy(raw, key=key))
    assert [row[0] for row in got] == [
        None,
        None,
        None,
        hashes("11010519491231002X"),
        hashes("11010519491231002X"),
        hashes("11"),  # `11` and `1`: the two deletions are one
        hashes("7"),  # `7` and the empty string
    ]
    # The number and its 18 deletions, less the repeats of deleting either `1` of `11` and
    # either `0` of `00`.
    assert len(got[3][0]) == 17
    # Nothing but hashes, and none equal to the exact-match hash of `id_number_hash`.
    exact = hmac.new(key, b"id:11010519491231002X", hashlib.sha256).hexdigest()
    assert exact not in got[3][0]


# Addresses -----------------------------------------------------------------------------------


def test_address_normalised_tokens_and_key(spark: SparkSession) -> None:
    cases = [
        # raw, normalised, tokens, key
        (None, None, None, None),
        ("", None, None, None),
        (" \t ", None, None, None),
        ("，。！", None, None, None),
        (
            "深圳市 南山区 科技园路 8号",
            "深圳市 南山区 科技园路 8号",
            ["深圳", "圳市", "南山", "山区", "科技", "技园", "园路", "8", "号"],
            "深圳南山科技园8",
        ),
        (
            "深圳南山区科技园路８号",
            "深圳南山区科技园路8号",
            ["深圳", "圳南", "南山", "山区", "区科", "科技", "技园", "园路", "8", "号"],
            "深圳南山科技园8",
        ),
        (
            "广东省深圳市南山区科技园路8号",
            "广东省深圳市南山区科技园路8号",
            None,
            "深圳南山科技园8",
        ),
        ("广东 深圳 南山 科技园 8", "广东 深圳 南山 科技园 8", None, "深圳南山科技园8"),
        ("北京市朝阳区建国路1号", "北京市朝阳区建国路1号", None, "北京朝阳建国1"),
        ("广西壮族自治区南宁市青秀区", "广西壮族自治区南宁市青秀区", None, "南宁青秀"),
        ("山东路8号", "山东路8号", None, "山东8"),
        (
            "No.8, Keji Rd., Nanshan",
            "no 8 keji rd nanshan",
            ["number", "8", "keji", "road", "nanshan"],
            "8kejinanshan",
        ),
        ("８ Ｋｅｊｉ Ｒｏａｄ Nanshan", "8 keji road nanshan", None, "8kejinanshan"),
        ("Rd", "rd", ["road"], "rd"),
        ("Straße ① №5", "strasse 1 no5", ["strasse", "1", "number", "5"], "strasse1no5"),
    ]
    got = _apply(
        spark, [case[0] for case in cases], address_normalised, address_tokens, address_key
    )
    for case, (normalised, tokens, key) in zip(cases, got, strict=True):
        assert normalised == case[1], case[0]
        if case[2] is not None or case[1] is None:
            assert tokens == case[2], case[0]
        assert key == case[3], case[0]


def test_address_key_with_postcode_and_postcode_norm(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [
            (1, "深圳市南山区科技园路8号", "518 057"),
            (2, "深圳南山区科技园路８号", "５１８０５７"),
            (3, "深圳南山区科技园路8号", None),
            (4, None, "518057"),
            (5, "Flat 2, 10 Downing St", " sw1a 2aa "),
            (6, "   ", "   "),
        ],
        "i int, address string, postcode string",
    )
    rows = (
        frame.select(
            "i",
            address_key(F.col("address"), postcode=F.col("postcode")).alias("key"),
            postcode_norm(F.col("postcode")).alias("postcode"),
        )
        .orderBy("i")
        .collect()
    )
    assert [(row["key"], row["postcode"]) for row in rows] == [
        ("深圳南山科技园8|518057", "518057"),
        ("深圳南山科技园8|518057", "518057"),
        ("深圳南山科技园8", None),
        (None, "518057"),
        ("flat210downing|SW1A2AA", "SW1A2AA"),
        (None, None),
    ]


def test_address_parts(spark: SparkSession) -> None:
    cases = [
        (None, (None,) * 6),
        ("", (None,) * 6),
        ("  ", (None,) * 6),
        (
            "广东省 深圳市 南山区 科技园路 8号",
            ("广东省", "深圳市", "南山区", None, "科技园路", "8号"),
        ),
        (
            "深圳南山区粤海街道科技园南路８号腾讯大厦Ａ座1201室",
            (None, None, "深圳南山区", "粤海街道", "科技园南路", "8号腾讯大厦a座1201室"),
        ),
        (
            "广西壮族自治区南宁市青秀区民族大道100号",
            ("广西壮族自治区", "南宁市", "青秀区", None, "民族大道", "100号"),
        ),
        ("北京市朝阳区建国路", (None, "北京市", "朝阳区", None, "建国路", None)),
        ("江苏省昆山市花桥镇", ("江苏省", "昆山市", None, "花桥镇", None, None)),
        ("Keji Road 8", (None,) * 6),
    ]
    fields = ("province", "city", "district", "town", "street", "building")
    got = _apply(spark, [case[0] for case in cases], address_parts)
    assert [_fields(row[0], fields) for row in got] == [expected for _, expected in cases]


_SHENZHEN = ["101", "8", "ji", "ke", "nan", "road", "shan", "shen", "yuan", "zhen"]
_ZHENGZHOU = ["8", "jin", "min", "ren", "road", "shui", "zheng", "zhou"]


def test_romanised_address_tokens_and_key(spark: SparkSession) -> None:
    cases = [
        # raw, tokens (sorted, repeats kept); the key is the tokens joined by one space
        (None, None),
        ("", None),
        (" \t ", None),
        ("，。！", None),
        ("Rd", None),  # administrative words only
        ("路", None),  # a road kind alone
        ("路8号", ["8", "road"]),
        # The road kind is kept: 友谊路 and 友谊街 are two streets, whatever the script.
        ("广州市越秀区友谊街193号", ["193", "guang", "street", "xiu", "yi", "you", "yue", "zhou"]),
        (
            "No.193, Youyi St, Yuexiu, Guangzhou",
            ["193", "guang", "street", "xiu", "yi", "you", "yue", "zhou"],
        ),
        ("广州市越秀区友谊路193号", ["193", "guang", "road", "xiu", "yi", "you", "yue", "zhou"]),
        ("广州越秀友谊街道8号", ["8", "guang", "xiu", "yi", "you", "yue", "zhou"]),  # subdistrict
        ("广东省深圳市南山区科技园路8号101室", _SHENZHEN),
        ("深圳市南山区科技园路8号101室", _SHENZHEN),  # without the province
        ("广东深圳南山科技园路８号１０１室", _SHENZHEN),  # markers dropped, full-width digits
        ("深圳 南山 科技园路 No.8 101室", _SHENZHEN),
        (
            "Room 101, No. 8 Kejiyuan Road, Nanshan District, Shenzhen, Guangdong Province",
            _SHENZHEN,
        ),
        ("RM 101, KEJIYUAN RD NO.8, NANSHAN, SHENZHEN, GUANGDONG.", _SHENZHEN),
        ("rm 101, 8 kejiyuan rd, nanshan, shenzhen", _SHENZHEN),
        ("河南省郑州市金水区人民路8号", _ZHENGZHOU),
        ("8 Renmin Rd, Jinshui, Zhengzhou, Henan", _ZHENGZHOU),
        ("河南路8号", ["8", "he", "nan", "road"]),
        ("8 Henan Road", ["8", "he", "nan", "road"]),  # segmented hen an, canonically he nan
        ("上海市静安区", ["gan", "hai", "jin", "shang"]),  # jing an and jingan: one spelling
        ("Jingan District, Shanghai", ["gan", "hai", "jin", "shang"]),
        ("西安市雁塔区", ["ta", "xian", "yan"]),
        ("Yanta District, Xian", ["ta", "xian", "yan"]),
        ("山东路8号", ["8", "dong", "road", "shan"]),  # a road named after a province keeps it
        ("8 Shandong Road", ["8", "dong", "road", "shan"]),
        ("山东省青岛市山东路8号", ["8", "dao", "dong", "qing", "road", "shan"]),
        ("8 Shandong Road, Qingdao, Shandong", ["8", "dao", "dong", "qing", "road", "shan"]),
        ("1号1室", ["1", "1"]),
        ("Flat 2, 10 Downing St", ["10", "2", "downing", "flat", "street"]),
    ]
    values = [case[0] for case in cases]
    got = _apply(spark, values, romanised_address_tokens, romanised_address_key)
    for (raw, tokens), (got_tokens, got_key) in zip(cases, got, strict=True):
        assert got_tokens == tokens, raw
        assert got_key == (None if tokens is None else " ".join(tokens)), raw


# IP prefixes ---------------------------------------------------------------------------------


def test_ip_prefixes(spark: SparkSession) -> None:
    cases = [
        # raw, version, /24, /48
        (None, None, None, None),
        ("", None, None, None),
        ("   ", None, None, None),
        (" 10.1.2.3 ", 4, "10.1.2.0/24", None),
        ("１９２.１６８.１.２００", 4, "192.168.1.0/24", None),
        ("256.1.1.1", None, None, None),
        ("01.2.3.4", None, None, None),
        ("1.2.3", None, None, None),
        ("2001:DB8::1", 6, None, "2001:db8::/48"),
        ("2001:0db8:0000:0042:0000:8a2e:0370:7334", 6, None, "2001:db8::/48"),
        ("2001:db8:1:2:3:4:5:6", 6, None, "2001:db8:1::/48"),
        ("::", 6, None, "::/48"),
        ("::1", 6, None, "::/48"),
        ("0:db8::", 6, None, "0:db8::/48"),
        ("fe80::1%eth0", 6, None, "fe80::/48"),
        ("::ffff:1.2.3.4", 6, None, "::/48"),
        ("1:2:3:4:5:6:1.2.3.4", 6, None, "1:2:3::/48"),
        ("1:2:3:4:5:6:7::", 6, None, "1:2:3::/48"),
        ("1:2:3:4:5:6:7:8::", None, None, None),
        ("1::2::3", None, None, None),
        (":::", None, None, None),
        ("12345::", None, None, None),
        ("not an ip", None, None, None),
    ]
    got = _apply(spark, [case[0] for case in cases], ip_version, ipv4_prefix24, ipv6_prefix48)
    assert got == [case[1:] for case in cases]


# Properties ----------------------------------------------------------------------------------

_PROPERTY_SETTINGS = settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Any text: control characters, combining marks, full-width forms, Han, surrogates excluded
# (Spark strings are UTF-8).
_ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_NAME_LIKE = st.lists(
    st.sampled_from(["张", "伟", "李", "Zhang", "WEI", "jianing", "Ｌｉ", " ", "-", "吕", "ü"]),
    max_size=6,
).map("".join)
_ADDRESS_LIKE = st.lists(
    st.sampled_from(
        ["广东省", "深圳市", "南山区", "科技园路", "８号", "Rd", "No.", "8", " ", "，", "山东"]
        + ["st"]
    ),
    max_size=8,
).map("".join)


def _values(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[str | None]]:
    return st.lists(st.one_of(st.none(), text, _ANY_TEXT), min_size=1, max_size=40)


@_PROPERTY_SETTINGS
@given(_values(_NAME_LIKE))
def test_name_normalisers_idempotent_null_preserving(
    spark: SparkSession, values: list[str | None]
) -> None:
    got = _apply(
        spark,
        values,
        name_key,
        name_tokens,
        lambda raw: strip_company_suffix(raw).getField("name"),
    )
    for value, (key, tokens, company) in zip(values, got, strict=True):
        # The Spark column is the Python function; keying the key again (in Python, to keep one
        # Spark job per example) changes nothing.
        python_tokens = name_tokens_value(value)
        assert tokens == (None if python_tokens is None else list(python_tokens)), value
        assert (key is None) == (tokens is None), value
        if key is not None:
            assert key == " ".join(tokens) and tokens == sorted(tokens), value
            assert name_tokens_value(key) == python_tokens, value
        if value is None:
            assert (key, tokens, company) == (None, None, None)


@_PROPERTY_SETTINGS
@given(_values(_ADDRESS_LIKE))
def test_address_normalisers_idempotent_null_preserving(
    spark: SparkSession, values: list[str | None]
) -> None:
    got = _apply(
        spark,
        values,
        address_key,
        # address_key(address_key(x)) without a second, nested UDF stage (each costs a Python
        # worker round trip): the NFKC half is checked in Python below, the native half here.
        lambda raw: key_of_normalised(fold_separators(address_key(raw))),
        address_normalised,
        address_tokens,
        address_parts,
        postcode_norm,
        lambda raw: postcode_norm(postcode_norm(raw)),
    )
    for value, row in zip(values, got, strict=True):
        key, key_of_key, normalised, tokens, parts, postcode, postcode2 = row
        assert key == key_of_key, value
        assert key is None or nfkc_casefold_value(key) == key, value
        assert normalised is None or nfkc_casefold_value(normalised) == normalised, value
        assert postcode == postcode2, value
        if normalised is None:
            assert key is None and tokens is None, value
        if value is None:
            assert (key, normalised, tokens, postcode) == (None, None, None, None)
            assert all(part is None for part in parts)


_LATIN_ADDRESS_LIKE = st.lists(
    st.sampled_from(
        ["Room 101", "No.8", "Kejiyuan Rd", "Nanshan", "Shenzhen", "Guangdong", "Henan", ", "]
        + ["Jingan", "Xian", "ST", "８", "广东", "深圳市", " "]
    ),
    max_size=8,
).map("".join)


@_PROPERTY_SETTINGS
@given(_values(st.one_of(_ADDRESS_LIKE, _LATIN_ADDRESS_LIKE)))
def test_romanised_address_key_idempotent_null_preserving(
    spark: SparkSession, values: list[str | None]
) -> None:
    got = _apply(
        spark,
        values,
        romanised_address_key,
        romanised_address_tokens,
        lambda raw: romanised_address_key(romanised_address_key(raw)),
    )
    for value, (key, tokens, key_of_key) in zip(values, got, strict=True):
        assert key == key_of_key, value
        assert (key is None) == (tokens is None), value
        if tokens is not None:
            assert tokens == sorted(tokens) and key == " ".join(tokens), value
            assert all(token and " " not in token for token in tokens), value
        if value is None:
            assert (key, tokens) == (None, None)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), _ANY_TEXT, _ADDRESS_LIKE, _LATIN_ADDRESS_LIKE))
def test_romanised_tokens_value_idempotent_never_raises(raw: str | None) -> None:
    """The Python half of the romanised key, on more examples than Spark allows."""
    tokens = romanised_tokens_value(raw)
    if tokens is not None:
        assert list(tokens) == sorted(tokens)
        assert romanised_tokens_value(" ".join(tokens)) == tokens


# Syllables without the one-letter `a`, `e`, `o`: with them a rare three-way split (`lu a nei` /
# `luan ei`) has two canonical forms; see `canonical_syllables`.
_SYLLABLES = st.sampled_from(sorted(_pinyin_syllables() - {"a", "e", "o"}))


@settings(max_examples=300, deadline=None)
@given(st.lists(_SYLLABLES, min_size=1, max_size=5))
def test_canonical_syllables_agree_with_segmenter(syllables: list[str]) -> None:
    """Han gives the true syllables, Latin text their concatenation: one canonical form."""
    segmented = segment_pinyin("".join(syllables))
    assert segmented is not None
    assert canonical_syllables(syllables) == canonical_syllables(segmented)
    canonical = canonical_syllables(syllables)
    assert canonical_syllables(canonical) == canonical


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


_DIGITS = st.text(alphabet="0123456789X", min_size=1, max_size=18)


@st.composite
def _edited(draw: st.DrawFn) -> tuple[str, str]:
    """A number and a copy with 0 to 4 random single-character edits (or an unrelated one)."""
    number = draw(_DIGITS)
    other = number
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["substitute", "insert", "delete"]))
        position = draw(st.integers(0, max(len(other) - 1, 0)))
        char = draw(st.sampled_from("0123456789X"))
        if kind == "substitute" and other:
            other = other[:position] + char + other[position + 1 :]
        elif kind == "insert":
            other = other[:position] + char + other[position:]
        elif len(other) > 1:
            other = other[:position] + other[position + 1 :]
    return number, draw(st.one_of(st.just(other), _DIGITS))


@_PROPERTY_SETTINGS
@given(st.lists(_edited(), min_size=1, max_size=40))
def test_id_number_fuzzy_overlaps_within_one_edit(
    spark: SparkSession, pairs: list[tuple[str, str]]
) -> None:
    frame = spark.createDataFrame(
        [(i, a, b) for i, (a, b) in enumerate(pairs)], "i int, a string, b string"
    )
    key = b"test-key"
    overlaps = [
        row["overlap"]
        for row in frame.select(
            "i",
            F.arrays_overlap(
                id_number_fuzzy(F.col("a"), key=key), id_number_fuzzy(F.col("b"), key=key)
            ).alias("overlap"),
        )
        .orderBy("i")
        .collect()
    ]
    for (a, b), overlap in zip(pairs, overlaps, strict=True):
        distance = _levenshtein(a, b)
        if distance <= 1:
            assert overlap is True, (a, b)
        elif distance >= 3:
            assert overlap is False, (a, b)


_KNOWN_REGIONS = ("110105", "310104", "440305", "330106", "510107")
_VALID_RIC = st.builds(
    _ric,
    st.sampled_from(_KNOWN_REGIONS),
    st.dates(datetime.date(1950, 1, 1), datetime.date(2015, 12, 31)),
    st.integers(0, 999),
)
_RIC_LIKE = st.one_of(
    _VALID_RIC,
    _VALID_RIC.map(lambda number: number.lower()),
    st.tuples(_VALID_RIC, st.sampled_from("0123456789X")).map(lambda pair: pair[0][:-1] + pair[1]),
    _VALID_RIC.map(lambda number: " ".join(number[i : i + 6] for i in range(0, 18, 6))),
    st.from_regex(r"[0-9]{17}[0-9Xx]", fullmatch=True),
)
_USCC_LIKE = st.one_of(
    st.from_regex(r"[0-9]{8}[0-9A-HJ-NPQRTUWXY]{9}", fullmatch=True).map(_uscc),
    st.from_regex(r"[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}", fullmatch=True),
)


@_PROPERTY_SETTINGS
@given(st.lists(st.one_of(st.none(), _RIC_LIKE, _USCC_LIKE, _ANY_TEXT), min_size=1, max_size=40))
def test_identity_checks_agree_with_stdnum(spark: SparkSession, values: list[str | None]) -> None:
    got = _apply(spark, values, ric_checks, uscc_valid)
    for value, (checks, uscc_ok) in zip(values, got, strict=True):
        number = None if value is None else normalise_number(value)
        if not number:
            assert (checks["valid"], uscc_ok) == (None, None), value
            continue
        valid = ric.is_valid(number)
        assert checks["valid"] is valid, value
        assert checks["birth_date"] == (ric.get_birth_date(number) if valid else None), value
        assert checks["region_code"] == (number[:6] if valid else None), value
        assert uscc_ok is uscc.is_valid(number), value
        assert check_ric(value) == (valid, checks["birth_date"], checks["region_code"])


@_PROPERTY_SETTINGS
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.from_regex(r"[0-9]{1,25}", fullmatch=True),
            st.from_regex(r"[0-9]{12,19}", fullmatch=True).map(
                lambda digits: digits + luhn.calc_check_digit(digits)
            ),
            _ANY_TEXT,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_luhn_agrees_with_stdnum(spark: SparkSession, values: list[str | None]) -> None:
    got = _apply(spark, values, luhn_valid, issuer_prefix, card_scheme)
    for value, (valid, prefix, scheme) in zip(values, got, strict=True):
        is_digits = value is not None and value.isascii() and value.isdigit()
        assert valid == (luhn.is_valid(value) if is_digits else None), value
        is_card = is_digits and len(value) >= 12
        assert prefix == (value[:6] if is_card else None), value
        assert (scheme is None) == (not is_card), value


def _python_prefixes(value: str | None) -> tuple[int | None, str | None, str | None]:
    if value is None:
        return None, None, None
    try:
        address = ipaddress.ip_address(value.strip(" "))
    except ValueError:
        return None, None, None
    if address.version == 4:
        return 4, str(ipaddress.ip_network(f"{address}/24", strict=False)), None
    without_zone = str(address).split("%")[0]
    return 6, None, str(ipaddress.ip_network(f"{without_zone}/48", strict=False))


@_PROPERTY_SETTINGS
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.ip_addresses().map(str),
            st.ip_addresses(v=6).map(lambda address: address.exploded.upper()),
            st.ip_addresses(v=6).map(lambda address: address.compressed),
            _ANY_TEXT,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_ip_prefixes_agree_with_ipaddress(spark: SparkSession, values: list[str | None]) -> None:
    got = _apply(spark, values, ip_version, ipv4_prefix24, ipv6_prefix48)
    for value, row in zip(values, got, strict=True):
        if value is not None and not value.isascii():
            assert row[0] in (None, 4, 6), value  # full-width forms are accepted, see above
            continue
        assert row == _python_prefixes(value), value


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), _ANY_TEXT, _NAME_LIKE))
def test_per_value_functions_idempotent_never_raise(raw: str | None) -> None:
    """The Python halves of the UDFs, on many more examples than a Spark job per example allows."""
    tokens = name_tokens_value(raw)
    if tokens is not None:
        assert name_tokens_value(" ".join(tokens)) == tokens
    assert check_ric(raw)[0] in (True, False, None)
    assert check_uscc(raw) in (True, False, None)
    if raw is not None:
        once = nfkc_casefold_value(raw)
        assert nfkc_casefold_value(once) == once


def test_nfkc_casefold_is_idempotent_on_tricky_text() -> None:
    for text in ("ＡＢＣ", "ß", "ﬁ", "İ", "ᾼ", "①", "\u3000", "e\u0301", "ǅ"):
        once = nfkc_casefold_value(text)
        assert nfkc_casefold_value(once) == once, text
