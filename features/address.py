"""Addresses, Chinese and Latin: normalised text, tokens, parts, and exact-comparison keys.

Two families of keys and tokens:

- `romanised_address_tokens` / `romanised_address_key`, what `features.standardise` writes
  as `address_tokens` / `address_key`: Han romanised to pinyin syllables and Latin pinyin
  split into syllables, so `广东省深圳市南山区科技园路8号101室` and
  `Room 101, No. 8 Kejiyuan Road, Nanshan District, Shenzhen, Guangdong Province` agree;
- `address_tokens` (Han character bigrams) and `address_key` (Han text without its
  administrative characters): native, script-bound, and blind to homophones that pinyin
  merges (two different places whose names read alike).

The Unicode normalisation (NFKC with case folding, `features.names.nfkc_casefold`) and the
romanisation (pypinyin, `features.names.romanised_runs`) run in Python; everything between and
after them is native Spark.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.names import canonical_syllables, nfkc_casefold, romanised_runs
from features.text import blank_to_null, let, to_half_width

# Column names this module adds when callers follow its naming.
ADDRESS_NORMALISED = "address_normalised"
ADDRESS_TOKENS = "address_tokens"
ADDRESS_PARTS = "address_parts"
ADDRESS_KEY = "address_key"
POSTCODE_NORM = "postcode_norm"

# Fields of the struct returned by `address_parts`.
PART_FIELDS = ("province", "city", "district", "town", "street", "building")

# Latin abbreviations expanded in tokens (`rd` -> `road`).
ABBREVIATIONS = {
    "rd": "road",
    "st": "street",
    "str": "street",
    "ave": "avenue",
    "av": "avenue",
    "blvd": "boulevard",
    "ln": "lane",
    "hwy": "highway",
    "no": "number",
    "nr": "number",
    "num": "number",
    "bldg": "building",
    "bld": "building",
    "blk": "block",
    "rm": "room",
    "fl": "floor",
    "flr": "floor",
    "apt": "apartment",
    "ste": "suite",
    "dist": "district",
    "distr": "district",
    "prov": "province",
    "ctr": "center",
    "centre": "center",
    "bway": "broadway",
    "ind": "industrial",
}
# Latin words that only say what kind of part follows: the counterparts of the Chinese
# administrative characters below, dropped from the key (after abbreviation expansion).
_LATIN_ADMIN_WORDS = (
    "province",
    "city",
    "district",
    "county",
    "town",
    "township",
    "road",
    "street",
    "avenue",
    "lane",
    "number",
    "building",
    "block",
    "room",
)
# Chinese administrative and addressing characters dropped from the key: 广东省深圳市 and
# 广东深圳 are one place. Dropped wherever they stand, which merges the rare pair that differs
# only by one of them (市场路 / 场路): the key is for exact comparison, not for display.
_HAN_ADMIN_CHARS = "[省市区县镇乡路街道号栋幢座室]"
# Provinces and autonomous regions, after the characters above are removed (自治区 -> 自治).
# Dropped from the start of the key because the city already fixes the province and people
# omit it as often as they write it. Not dropped: the municipalities (北京 上海 天津 重庆),
# which are also the city, and Hong Kong, Macau, Taiwan.
_PROVINCES = (
    "广西壮族自治",
    "宁夏回族自治",
    "新疆维吾尔自治",
    "内蒙古自治",
    "西藏自治",
    "黑龙江",
    "内蒙古",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
)
# Leading provinces are dropped only while at least two Han characters follow: `山东路8号`
# (a road named after the province, no city written) keeps `山东`. The greedy `+` with the
# look-ahead drops the longest prefix that leaves two Han characters, so dropping again finds
# nothing more: the key is idempotent.
_LEADING_PROVINCES = r"^(?:" + "|".join(_PROVINCES) + r")+(?=.*\p{IsHan}.*\p{IsHan})"

# The Latin (pinyin) names of the same provinces, as one word each; `shaanxi` is the official
# spelling of 陕西 (pypinyin reads it `shan xi`, like 山西).
_LATIN_PROVINCES = (
    "anhui",
    "fujian",
    "gansu",
    "guangdong",
    "guangxi",
    "guizhou",
    "hainan",
    "hebei",
    "heilongjiang",
    "henan",
    "hubei",
    "hunan",
    "jiangsu",
    "jiangxi",
    "jilin",
    "liaoning",
    "neimenggu",
    "ningxia",
    "qinghai",
    "shaanxi",
    "shandong",
    "shanxi",
    "sichuan",
    "xinjiang",
    "xizang",
    "yunnan",
    "zhejiang",
)
# The road kind names a different street: 友谊路 and 友谊街 are two places, as are Youyi Road
# and Youyi Street, and one city can hold both (on generated data at 1,000,000 accounts, the
# edges joining two rings through one shared return address that were looked at all joined a
# 路 and a 街 address of one name and number).
# The romanised tokens keep it as the Latin word (路 -> road, 街 -> street; `rd` and `st`
# expand to the same words). 街道 is a subdistrict marker, not a street.
_ROAD_KINDS = {"路": "road", "街": "street"}
_ROMANISED_DROPPED_WORDS = tuple(w for w in _LATIN_ADMIN_WORDS if w not in _ROAD_KINDS.values())

# As `_LEADING_PROVINCES`, for text whose administrative characters became spaces.
_LEADING_PROVINCES_SPACED = r"^(?:(?:" + "|".join(_PROVINCES) + r")\s*)+(?=.*\p{IsHan}.*\p{IsHan})"

_FOLDED = r"[\s\p{P}\p{S}\p{C}]+"
# Runs of Han characters, of digits, and of other letters (marks kept with their letters).
_RUNS = r"\p{IsHan}+|\p{N}+|[\p{L}\p{M}&&[^\p{IsHan}]]+"
# The same, with ASCII letters apart from other letters, as `features.names.romanise_run`
# splits them: `rdé` is `rd` and `é`, and `rd` is expanded (and dropped) on every pass.
_ROMAN_RUNS = r"\p{IsHan}+|\p{N}+|[a-z]+|[\p{L}\p{M}&&[^\p{IsHan}a-z]]+"

# Chinese address parts, each ending in its marker and unable to run across another marker;
# every part is optional, matched in the usual big-to-small order from the start of the text.
_NOT_MARKER = "[^省市区县镇乡路街道号栋幢座室]"
_PARTS = (
    "^"
    + f"({_NOT_MARKER}{{2,8}}?(?:省|自治区|特别行政区))?"
    + f"({_NOT_MARKER}{{1,10}}?(?:市|自治州|地区|盟))?"
    + f"({_NOT_MARKER}{{1,10}}?(?:区|县|旗))?"
    + f"({_NOT_MARKER}{{1,10}}?(?:镇|乡|街道))?"
    + f"({_NOT_MARKER}{{1,20}}?(?:大道|路|街|道|巷|弄))?"
    + "(.*(?:号|栋|幢|座|室))?"
)


def address_normalised(raw: Column) -> Column:
    """NFKC with case folding (full-width to half-width, `①` to `1`), whitespace, punctuation,
    symbols and control characters folded to one space, trimmed.

    `深圳市，南山区　科技园路８号` gives `深圳市 南山区 科技园路 8号`. Null, empty or
    whitespace- or punctuation-only input gives null.
    """
    return fold_separators(nfkc_casefold(raw))


def fold_separators(text: Column) -> Column:
    """The native half of `address_normalised`: whitespace, punctuation, symbols and control
    characters folded to one space, trimmed; blank -> null. For text already NFKC-folded."""
    return blank_to_null(F.trim(F.regexp_replace(text, _FOLDED, " ")))


def _expand(word: Column) -> Column:
    # One map literal rather than a CASE per abbreviation: a smaller plan to generate code for.
    abbreviations = F.create_map(*[F.lit(text) for pair in ABBREVIATIONS.items() for text in pair])
    return F.coalesce(F.try_element_at(abbreviations, word), word)


def _bigrams(run: Column) -> Column:
    """Overlapping two-character pieces of a Han run; a single character stays whole."""
    return F.transform(
        F.sequence(F.lit(1), F.greatest(F.length(run) - 1, F.lit(1))),
        lambda position: F.substring(run, position, 2),
    )


def _runs(normalised: Column) -> Column:
    return F.regexp_extract_all(normalised, F.lit(_RUNS), 0)


def address_tokens(raw: Column) -> Column:
    """`array<string>` of address tokens: Han runs as character bigrams, digit runs, and Latin
    words with abbreviations expanded (`rd` -> `road`, `st` -> `street`, `no` -> `number`, see
    `ABBREVIATIONS`), in text order.

    Bigrams rather than pinyin: they are native, and pinyin would merge homophones that are
    different places. `深圳 Keji Rd 8号` gives `["深圳", "keji", "road", "8", "号"]`.
    Null, empty or whitespace- or punctuation-only input gives null.

    >>> logistics.select(address_tokens(F.col("address")).alias(ADDRESS_TOKENS))  # doctest: +SKIP
    """
    runs = _runs(address_normalised(raw))
    pieces = F.transform(
        runs,
        lambda run: F.when(run.rlike(r"^\p{IsHan}"), _bigrams(run)).otherwise(
            F.array(_expand(run))
        ),
    )
    tokens = F.flatten(pieces)
    return F.when(F.size(tokens) > 0, tokens)


def address_parts(raw: Column) -> Column:
    """A struct `(province, city, district, town, street, building)` parsed from a Chinese
    address by its markers: 省/自治区, 市/自治州, 区/县, 镇/乡/街道, 路/街/道, then the rest up
    to the last 号/栋/幢/座/室. Each part keeps its marker (`深圳市`); a part that is not
    written is null. Parsed from the normalised text without spaces, so
    `广东省 深圳市 南山区 科技园路 8号` gives (`广东省`, `深圳市`, `南山区`, null, `科技园路`,
    `8号`). A regex reading, not a gazetteer: `某某小区` with no district before it is read as
    a district. Null, empty or whitespace-only input gives a struct of nulls.
    """
    compact = F.regexp_replace(address_normalised(raw), r"\s+", "")
    return F.struct(
        *[
            blank_to_null(F.regexp_extract(compact, _PARTS, index)).alias(field)
            for index, field in enumerate(PART_FIELDS, start=1)
        ]
    )


def postcode_norm(raw: Column) -> Column:
    """Postcode: half-width, upper case, letters and digits only (`518 057`, `５１８０５７`
    give `518057`; `sw1a 1aa` gives `SW1A1AA`). Null, empty or whitespace-only gives null."""
    return blank_to_null(F.upper(F.regexp_replace(to_half_width(raw), r"[^0-9A-Za-z]", "")))


def address_key(raw: Column, *, postcode: Column | None = None) -> Column:
    """A key for exact comparison of addresses.

    From the normalised text: when it has more than one word, Latin abbreviations are expanded
    and administrative words (`road`, `street`, `number`, ...) dropped; whitespace and
    punctuation removed; the Chinese administrative characters (省 市 区 县 镇 乡 路 街 道
    号 栋 幢 座 室) removed; a leading province dropped (not the municipalities).
    `深圳市 南山区 科技园路 8号`, `深圳南山区科技园路８号` and
    `广东省深圳市南山区科技园路8号` all give `深圳南山科技园8`.
    With `postcode`, `|` and `postcode_norm(postcode)` are appended when the postcode is not
    null (so keys with and without a postcode differ). Null, empty, whitespace- or
    punctuation-only addresses give null, whatever the postcode.

    >>> logistics.select(  # doctest: +SKIP
    ...     address_key(F.col("address"), postcode=F.col("postcode")).alias(ADDRESS_KEY)
    ... )
    """
    key = key_of_normalised(address_normalised(raw))
    if postcode is None:
        return key
    return F.when(key.isNotNull(), F.concat_ws("|", key, postcode_norm(postcode)))


def key_of_normalised(normalised: Column) -> Column:
    """The native half of `address_key` (without postcode), from `address_normalised` text."""
    # Words as written (split at whitespace and punctuation), not script runs: a key is one
    # word, so keying a key again expands and drops nothing, which keeps the key idempotent.
    # A word's leading combining marks are dropped: joined to the previous word they would
    # compose with it under NFKC the next time round.
    words = F.filter(
        F.transform(
            F.split(normalised, " "),
            lambda word: F.regexp_replace(word, r"^\p{M}+", ""),
        ),
        lambda word: word != F.lit(""),
    )
    meaningful = F.filter(F.transform(words, _expand), lambda word: ~word.isin(*_LATIN_ADMIN_WORDS))
    kept = F.when(F.size(words) > 1, meaningful).otherwise(words)
    joined = F.regexp_replace(F.array_join(kept, ""), _HAN_ADMIN_CHARS, "")
    key = blank_to_null(F.regexp_replace(joined, _LEADING_PROVINCES, ""))
    return key


def _without_trailing_province(words: Column) -> Column:
    """`words` without a last Latin province name (`..., Shenzhen, Guangdong`), when another
    word that is not a number or a road kind stays: the Latin counterpart of dropping a leading
    Han province (Latin addresses run from small to big, Han ones from big to small)."""
    last = F.try_element_at(words, F.lit(-1))
    names = F.filter(
        words, lambda word: ~word.rlike(r"^\p{N}+$") & ~word.isin(*_ROAD_KINDS.values())
    )
    drop = F.coalesce(last.isin(*_LATIN_PROVINCES) & (F.size(names) >= 2), F.lit(False))
    return F.when(drop, F.slice(words, 1, F.size(words) - 1)).otherwise(words)


def prepare_for_romanisation(normalised: Column) -> Column:
    """The native half of `romanised_address_tokens`, from `address_normalised` text: the words
    that `romanised_tokens_value` romanises, one space apart.

    The road kinds 路 and 街 become the words `road` and `street`; the other Han administrative
    characters (省 市 区 县 镇 乡 道 号 栋 幢 座 室, and 街道) become word breaks and a leading
    province is dropped (as `address_key` does); Latin abbreviations are expanded and
    administrative words (`district`, `number`, ..., not `road` and `street`) dropped, and so
    is a last Latin province name. `广东省深圳市南山区科技园路8号` gives
    `深圳 南山 科技园 road 8`; `No. 8 Kejiyuan Rd, Nanshan District, Shenzhen, Guangdong`
    gives `8 kejiyuan road nanshan shenzhen`. Text with no word left, or only road kinds,
    gives null.
    """
    spaced = F.regexp_replace(normalised, "街道", " ")
    for han, latin in _ROAD_KINDS.items():
        spaced = F.regexp_replace(spaced, han, f" {latin} ")
    spaced = F.regexp_replace(spaced, _HAN_ADMIN_CHARS, " ")
    without_province = F.regexp_replace(spaced, _LEADING_PROVINCES_SPACED, "")
    runs = F.regexp_extract_all(without_province, F.lit(_ROMAN_RUNS), 0)
    # Han runs and digits are never abbreviations or administrative words: one pass for all.
    # The words are read several times below: `let` computes them once.
    words = F.filter(F.transform(runs, _expand), lambda word: ~word.isin(*_ROMANISED_DROPPED_WORDS))
    kinds = list(_ROAD_KINDS.values())
    return let(
        words,
        lambda kept: F.when(
            # A road kind alone (`Rd`, `路8号` has a number) says nothing of the place.
            F.exists(kept, lambda word: ~word.isin(*kinds)),
            let(F.array_join(_without_trailing_province(kept), " "), blank_to_null),
        ),
    )


@lru_cache(maxsize=65536)
def romanised_tokens_value(prepared: str | None) -> tuple[str, ...] | None:
    """Sorted tokens of one prepared address (`prepare_for_romanisation`): pinyin syllables,
    other Latin words, digit runs; repeats kept. None for None or text without tokens.

    Each word is romanised by `features.names.romanised_runs` (Han to toneless pinyin,
    run-together pinyin split into syllables), then its syllable boundaries are put in the
    canonical form of `features.names.canonical_syllables`, so that `Henan` and 河南 agree
    although the segmenter reads `henan` as `hen an`.
    """
    if prepared is None:
        return None
    tokens = [token for run in romanised_runs(prepared) for token in _canonical_run(run)]
    return tuple(sorted(tokens)) or None


@lru_cache(maxsize=1 << 17)
def _canonical_run(tokens: tuple[str, ...]) -> tuple[str, ...]:
    return canonical_syllables(tokens)


# Vectorised UDF: Han-to-pinyin needs pypinyin's dictionary, which has no Spark equivalent;
# repeated addresses (a warehouse on thousands of labels) are cached.
@F.pandas_udf(T.ArrayType(T.StringType()))  # type: ignore[call-overload]
def _romanised_tokens_udf(prepared: pd.Series) -> pd.Series:
    tokens = [None if pd.isna(value) else romanised_tokens_value(value) for value in prepared]
    return pd.Series([None if value is None else list(value) for value in tokens], dtype=object)


def romanised_address_tokens(raw: Column) -> Column:
    """`array<string>`: the sorted romanised tokens of an address, repeats kept.

    The same address written in Han or in Latin letters, in either order of its parts, with or
    without its province, administrative words (`省`, `District`, `Road`, `No.`, `Rm`) and
    full-width digits, gives the same tokens: `广东省深圳市南山区科技园路8号101室`,
    `深圳 南山 科技园路 No.8 101室` and
    `Room 101, No. 8 Kejiyuan Road, Nanshan District, Shenzhen, Guangdong Province` all give
    `["101", "8", "ji", "ke", "nan", "road", "shan", "shen", "yuan", "zhen"]`. The road kind
    is kept as a word (路, `Road`, `Rd` give `road`; 街, `Street`, `St` give `street`): two
    addresses that differ only by it are two streets. Null, empty, whitespace- or
    punctuation-only input, or an address of administrative words (and road kinds) only, gives
    null.

    >>> logistics.select(romanised_address_tokens(F.col("address")))  # doctest: +SKIP
    """
    return _romanised_tokens_udf(prepare_for_romanisation(address_normalised(raw)))


def romanised_address_key(raw: Column) -> Column:
    """An order-insensitive key for exact comparison: `romanised_address_tokens` joined by one
    space (`101 8 ji ke nan shan shen yuan zhen` for every form of the example there). Keying
    the key again gives the key. Null when there are no tokens.

    >>> accounts.select(romanised_address_key(F.col("address")))  # doctest: +SKIP
    """
    return F.array_join(romanised_address_tokens(raw), " ")
