"""Person and company names: a script-blind comparison key, tokens, and suffix stripping.

`name_key` and `name_tokens` make `张伟`, `Zhang Wei`, `WEI ZHANG`, `zhangwei` and
`Ｚｈａｎｇ　Ｗｅｉ` compare equal: Unicode NFKC with case folding, Han characters to toneless
pinyin (pypinyin), run-together pinyin split into syllables, tokens sorted so that surname-first
and given-name-first agree. `strip_company_suffix` is native Spark.

`romanised_runs` and `canonical_syllables` are shared with `features.address`, whose romanised
key reads addresses the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import pandas as pd
from pypinyin import Style, lazy_pinyin
from pypinyin.pinyin_dict import pinyin_dict
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features.text import blank_to_null, clean_text, let

# Column names this module adds when callers follow its naming (see standardise.py).
NAME_KEY = "name_key"
NAME_TOKENS = "name_tokens"
COMPANY_NAME = "company_name"

# Fields of the struct returned by `strip_company_suffix`.
NAME_FIELD = "name"
SUFFIX_FIELD = "suffix"
HONORIFIC_FIELD = "honorific"
_UNTITLED = "untitled"  # the name without its honorific, between the two steps

_NORMALISE_PASSES = 4  # NFKC and case folding settle after one or two passes; see below
_MAX_SEGMENT_LENGTH = 48  # longer Latin runs are not names: not worth a segmentation search
_MAX_SYLLABLE_LENGTH = 6  # zhuang, shuang, chuang
# Syllables without a vowel (m, n, ng, hm, hng) are interjections, never parts of names: letting
# the segmenter use them would read Latin names as pinyin (`ann` as `an n`).
_VOWELS = frozenset("aeiouv")

_WORD_RUN = re.compile(r"[^\W_]+")  # letters and digits of any script (Han included)
_PIECES = re.compile(r"[a-z]+|[0-9]+|[^a-z0-9]+")


def nfkc_casefold_value(raw: str) -> str:
    """NFKC, case-folded, NFKC again, repeated until stable (at most a few passes).

    A single NFKC(casefold(NFKC(x))) is not idempotent for a handful of characters (case folding
    can produce a sequence NFKC recomposes, and the reverse); iterating to the fixed point makes
    every normaliser built on it idempotent.
    """
    text = raw
    for _ in range(_NORMALISE_PASSES):
        folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
        if folded == text:
            break
        text = folded
    return text


@lru_cache(maxsize=65536)
def _nfkc_casefold_cached(raw: str) -> str:
    return nfkc_casefold_value(raw)


# Vectorised UDF: Spark has no Unicode normalisation function (NFKC), and `translate` only
# covers one-to-one mappings; `_nfkc_casefold_cached` makes repeated values cheap. Measured
# 2026-11-28, local[2], 200,000 distinct Chinese addresses: 61,000 values/second (machine
# shared, load average 7 on 2 cores); `address.address_key` on top of it: 27,000 values/second.
@F.pandas_udf(T.StringType())  # type: ignore[call-overload]
def _nfkc_casefold_udf(raw: pd.Series) -> pd.Series:
    return pd.Series([None if pd.isna(value) else _nfkc_casefold_cached(value) for value in raw])


def nfkc_casefold(raw: Column) -> Column:
    """Unicode NFKC with case folding (full-width to half-width, `ß` to `ss`, `①` to `1`).

    Null stays null; empty stays empty. Nothing else is removed.
    """
    return _nfkc_casefold_udf(raw)


@lru_cache(maxsize=1)
def _pinyin_syllables() -> frozenset[str]:
    """Every toneless pinyin syllable (`ü` written `v`) that pypinyin's dictionary uses.

    Taken from pypinyin's own data so that the segmenter and the Han-to-pinyin conversion agree
    on spelling (`lv`, `nv`) and on the syllable inventory (about 420 syllables).
    """
    syllables: set[str] = set()
    for readings in pinyin_dict.values():
        for reading in readings.split(","):
            # NFD splits the tone mark off (ǚ -> u + diaeresis + caron); ü is then written v.
            decomposed = unicodedata.normalize("NFD", reading).replace("u\u0308", "v")
            toneless = "".join(char for char in decomposed if not unicodedata.combining(char))
            if _VOWELS.intersection(toneless):
                syllables.add(toneless)
    return frozenset(syllables)


@lru_cache(maxsize=65536)
def segment_pinyin(word: str) -> tuple[str, ...] | None:
    """Split run-together pinyin (`zhangwei`) into syllables; None when it is not pinyin.

    pypinyin converts Han to pinyin but has no segmenter for pinyin text, hence this one:
    longest syllable first at each position, backtracking when the rest cannot be split
    (`jianing` -> `jia ning`, where plain greedy matching would be stuck at `jian|ing`). A word
    that is itself a syllable comes back whole, which keeps the key idempotent.
    """
    if not word or len(word) > _MAX_SEGMENT_LENGTH:
        return None
    syllables = _pinyin_syllables()
    # split_from[i]: a segmentation of word[i:], None when there is none (filled right to left)
    split_from: list[tuple[str, ...] | None] = [None] * len(word) + [()]
    for start in range(len(word) - 1, -1, -1):
        for end in range(min(len(word), start + _MAX_SYLLABLE_LENGTH), start, -1):
            rest = split_from[end]
            if rest is not None and word[start:end] in syllables:
                split_from[start] = (word[start:end], *rest)
                break
    return split_from[0]


@lru_cache(maxsize=1 << 17)
def romanise_run(run: str) -> tuple[str, ...]:
    """Tokens of one run of letters and digits, in text order: each Han character one toneless
    pinyin syllable, run-together pinyin split into syllables, other Latin words and digit runs
    whole, other scripts whole.

    `run` must be NFKC-folded with `ü` written `v` (as `romanised_runs` passes it). Cached:
    pypinyin is most of the cost of a romanised key, and runs (place names, surnames) repeat
    far more often than whole addresses or names do.
    """
    tokens: list[str] = []
    # pypinyin returns non-Han text unchanged, Han characters one syllable each.
    for piece in lazy_pinyin(run, style=Style.NORMAL):
        for part in _PIECES.findall(piece):
            if part.isascii() and part.isalpha():
                tokens.extend(segment_pinyin(part) or (part,))
            else:
                tokens.append(part)
    return tuple(tokens)


def romanised_runs(raw: str) -> list[tuple[str, ...]]:
    """`romanise_run` of each run of letters and digits of the NFKC-folded text (whitespace,
    punctuation and symbols separate runs)."""
    text = nfkc_casefold_value(raw).replace("ü", "v")
    return [romanise_run(run) for run in _WORD_RUN.findall(text)]


def canonical_syllables(tokens: Sequence[str]) -> tuple[str, ...]:
    """One spelling of the syllable boundaries that run-together pinyin leaves ambiguous.

    `henan` splits as `hen an` or `he nan`, `jingan` as `jing an` or `jin gan`, `xian` is one
    syllable or `xi an`: the segmenter cannot know which (the apostrophe that would say so,
    `Xi'an`, is usually left out), while Han characters give the true syllables (河南 `he nan`,
    静安 `jing an`, 西安 `xi an`). Both are rewritten to one canonical form, which need not be
    the true one: wherever the next syllable starts with a vowel (`a`, `e`, `o`), two
    neighbours that make one syllable are merged (`xi an` -> `xian`), else the last letter of
    the first moves over when both stay syllables (`hen an` -> `he nan`, `jing an` ->
    `jin gan`), repeated until nothing changes. Boundaries only move left or vanish, so this
    ends. Tokens that are not pinyin syllables are left alone and stop the rewriting.

    Measured against `segment_pinyin` of the concatenation: the two canonical forms agree for
    every pair of syllables (176,400), and for 1,000,000 random sequences of 3 to 5 syllables
    without the one-letter syllables `a`, `e`, `o`; with them, 2 in 1,000,000 differ (a lone
    `a` between two syllables: `lu a nei` is read `luan ei`).
    """
    syllables = _pinyin_syllables()
    canonical = list(tokens)
    position = 0
    while position < len(canonical) - 1:
        first, second = canonical[position], canonical[position + 1]
        if first in syllables and second in syllables and second[0] in "aeo":
            if first + second in syllables:
                canonical[position : position + 2] = [first + second]
                position = max(position - 1, 0)
                continue
            if first[:-1] in syllables and first[-1] + second in syllables:
                canonical[position : position + 2] = [first[:-1], first[-1] + second]
                position = max(position - 1, 0)
                continue
        position += 1
    return tuple(canonical)


@lru_cache(maxsize=65536)
def name_tokens_value(raw: str | None) -> tuple[str, ...] | None:
    """Sorted tokens of one name: pinyin syllables, other Latin words, digit runs, other scripts.

    None for None or for text without letters or digits.
    """
    if raw is None:
        return None
    tokens = [token for run in romanised_runs(raw) for token in run]
    return tuple(sorted(tokens)) or None


# Vectorised UDF: Han-to-pinyin needs pypinyin's dictionary, which has no Spark equivalent.
# Measured 2026-11-28, local[2], 200,000 names (128,112 distinct; 60% two or three Han
# characters, 40% two or three Latin pinyin words): 14,000 values/second, on a shared machine
# (load average 7 on 2 cores), so a lower bound.
@F.pandas_udf(T.ArrayType(T.StringType()))  # type: ignore[call-overload]
def _name_tokens_udf(raw: pd.Series) -> pd.Series:
    tokens = [None if pd.isna(value) else name_tokens_value(value) for value in raw]
    return pd.Series([None if value is None else list(value) for value in tokens], dtype=object)


def name_tokens(raw: Column) -> Column:
    """`array<string>`: the sorted pinyin and Latin tokens of a person or company name.

    `张伟`, `Zhang Wei`, `WEI ZHANG`, `zhangwei` all give `["wei", "zhang"]`. Han characters
    become toneless pinyin (`ü` as `v`), run-together pinyin is split into syllables, other
    Latin words and digit runs are kept whole, punctuation and whitespace separate tokens.
    Null, empty, whitespace- or punctuation-only input gives null.

    >>> accounts.select(name_tokens(F.col("legal_name")).alias(NAME_TOKENS))  # doctest: +SKIP
    """
    return _name_tokens_udf(raw)


def name_key(raw: Column) -> Column:
    """An order-insensitive key for exact comparison: `name_tokens` joined by one space.

    `张伟`, `Zhang Wei`, `WEI ZHANG`, `zhangwei`, `Ｚｈａｎｇ　Ｗｅｉ` all give `wei zhang`.
    The space between tokens is kept on purpose: without it the key would not be idempotent
    (`ge nan` would become `genan`, which re-segments as `gen an`). Null, empty, whitespace- or
    punctuation-only input gives null.
    """
    return F.array_join(name_tokens(raw), " ")


# Company-form suffixes, longest first within each script (alternation is ordered).
_HAN_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "个体工商户",
    "有限公司",
    "电子商务",
    "旗舰店",
    "专营店",
    "专卖店",
    "经营部",
    "工作室",
    "分公司",
    "公司",
    "集团",
    "商行",
    "商贸",
    "贸易",
    "科技",
    "实业",
    "网络",
)
_LATIN_SUFFIXES = (
    "incorporated",
    "international",
    "corporation",
    "e-commerce",
    "ecommerce",
    "technology",
    "holdings",
    "company",
    "limited",
    "trading",
    "group",
    "trade",
    "corp",
    "gmbh",
    "intl",
    "tech",
    "co",
    "inc",
    "llc",
    "l\\.l\\.c",
    "ltd",
    "plc",
    "pte",
    "pty",
)
_SEPARATORS = r"[\s.,&()\-]*"
_SUFFIX_RUN = (
    "((?:"
    + _SEPARATORS
    + "(?:"
    + "|".join(_HAN_SUFFIXES)
    + r"|\b(?:"
    + "|".join(_LATIN_SUFFIXES)
    + r")\b\.?))+)"
    + _SEPARATORS
    + "$"
)
_WITH_SUFFIX = "^(.+?)" + _SUFFIX_RUN
# The title ends where Latin letters and digits end, not at a Java word boundary: Han letters
# are word characters to `\b`, so `mr张` kept its title until its key (`mr zhang`) was keyed
# again (Hypothesis found it: the key was not idempotent).
LATIN_TITLES = ("mrs", "mr", "ms", "miss", "mx", "dr", "prof")
_LATIN_HONORIFIC = r"^(" + "|".join(LATIN_TITLES) + r")(?![a-z0-9])\.?\s*(.+)$"
_HAN_HONORIFIC = r"^(.+?)\s*(先生|女士|小姐|太太|夫人)$"
_EDGE_SEPARATORS = r"^[\s.,&()\-]+|[\s.,&()\-]+$"


def _non_empty(text: Column) -> Column:
    return F.when(text != F.lit(""), text)


def strip_company_suffix(raw: Column) -> Column:
    """A struct `(name, suffix, honorific)`: the name without company form or honorific.

    The text is first cleaned (half-width, lower case, whitespace folded, trimmed). A trailing
    run of company-form suffixes (`有限公司`, `科技有限公司`, `Co., Ltd.`, `Trading Co`, `LLC`,
    ...) goes to `suffix`; a leading Latin honorific (`Mr`, `Mrs`, `Ms`, `Dr`, ...) or a trailing
    Chinese one (`先生`, `女士`, `小姐`, ...) goes to `honorific`, without its dot. The name
    keeps at least one character: `公司` alone stays a name (`有限公司` alone gives
    `有限` and `公司`). Latin suffixes must be whole
    words (`Costco` keeps its `co`). Null, empty or whitespace-only input gives a struct of
    nulls; absent parts are null.

    >>> shops.select(strip_company_suffix(F.col("legal_name")))  # doctest: +SKIP
    """
    # Two `let`s one after the other, not one inside the other: Spark 4.1 leaves a Python UDF
    # unevaluated ("Cannot evaluate expression: PythonUDF") when its argument holds a lambda
    # that reads an enclosing lambda's variable, and `name_tokens` of this name is such a UDF.
    titled = let(clean_text(raw), _split_honorific)
    return let(titled, lambda parts: _split_suffix(parts[_UNTITLED], parts[HONORIFIC_FIELD]))


def _split_honorific(text: Column) -> Column:
    """A struct `(untitled, honorific)` of cleaned text."""
    latin_title = F.regexp_extract(text, _LATIN_HONORIFIC, 1)
    han_title = F.regexp_extract(text, _HAN_HONORIFIC, 2)
    untitled = (
        F.when(latin_title != F.lit(""), F.regexp_extract(text, _LATIN_HONORIFIC, 2))
        .when(han_title != F.lit(""), F.regexp_extract(text, _HAN_HONORIFIC, 1))
        .otherwise(text)
    )
    honorific = F.coalesce(_non_empty(latin_title), _non_empty(han_title))
    return F.struct(untitled.alias(_UNTITLED), honorific.alias(HONORIFIC_FIELD))


def _split_suffix(untitled: Column, honorific: Column) -> Column:
    has_suffix = untitled.rlike(_WITH_SUFFIX)
    name = F.when(has_suffix, F.regexp_extract(untitled, _WITH_SUFFIX, 1)).otherwise(untitled)
    suffix = F.when(has_suffix, F.regexp_extract(untitled, _WITH_SUFFIX, 2))
    return F.struct(
        blank_to_null(F.regexp_replace(name, _EDGE_SEPARATORS, "")).alias(NAME_FIELD),
        blank_to_null(F.regexp_replace(suffix, _EDGE_SEPARATORS, "")).alias(SUFFIX_FIELD),
        honorific.alias(HONORIFIC_FIELD),
    )
