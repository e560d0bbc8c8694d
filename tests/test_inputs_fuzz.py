"""Fuzzing the readers (`jobs/inputs.py`): bad input never loses data.

Hypothesis writes real CSV and parquet files (wrong types, empty, blank and huge strings,
control characters, bytes that are not UTF-8, broken quoting, duplicate and orphan ids,
timestamps out of range) and reads them with the real reader. The properties: the reader never
fails on a row; every bad row is quarantined once, with its reasons, and every good row is
accepted with the values written; rows read = accepted + quarantined for every dataset; no raw
identity or card number reaches the quarantine. A file of the wrong type or that cannot be read
is one `InputError` naming the file (the job's exit status 2).

Spark costs seconds per example, so each example packs many fuzzed rows into one file per
dataset and each property runs a handful of examples.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from jobs.inputs import CONTRACT, CORRUPT, ColumnSpec, LoadedInputs, load_inputs
from resolution.errors import InputError

# A handful of examples per property: each one is a real read of four files by Spark. No
# shrinking either (each step is another read); a failure names its dataset, row and reason.
FUZZ = settings(
    max_examples=4,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TAG = "row_tag"  # an extra column naming each written row, to find it again in the results
TS_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"
EPOCH = datetime(1970, 1, 1)
POOL = tuple(str(i) for i in range(1, 9))  # account ids: few, so some repeat
ORPHAN = "999"  # an id no accounts row has
DUPLICATE = "account_id: duplicate of another accounts row"
NOT_ACCEPTED = "account_id: not an accepted account (absent from accounts or quarantined)"
MALFORMED = "row: malformed CSV line"
# Characters the reader takes as empty text: separators, controls and format characters.
_BLANK_CATEGORIES = {"Zs", "Zl", "Zp", "Cc", "Cf"}
_BLANKS = ("", " ", "  \t", "\u3000", "\u00a0", "\u200b", "\ufeff", "\x00")
_NOT_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xe4\xb8", b"\x80abc")
_BAD_TIMESTAMPS = (
    "2024-13-45",
    "31/12/2024",
    "not a date",
    "2024-02-30",
    "20240102",
    "2024-01-02T25:00:00",
    "now",
)
_OUT_OF_RANGE_TIMESTAMPS = ("+12024-01-01", "0000-06-01", "10000-01-01T00:00:00", "-0044-03-15")
_BAD_COUNTS = ("1.5", "abc", "1e3", "9223372036854775808", "١٢", "0x10")
_BAD_ENUMS = ("bitcoin", "CARD", "card;", "unknown value", "Ｃａｒｄ")


@dataclass(frozen=True)
class Cell:
    """One fuzzed value: what is written, and what the reader must make of it.

    `written` is the field's bytes in a CSV file (unquoted), or the Python value of a parquet
    column; `expected` the accepted value (a timestamp as `TS_FORMAT` text) or None;
    `problems` the beginnings of the reasons the row must be quarantined with.
    """

    written: Any
    expected: Any
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    tag: str
    cells: dict[str, Cell]

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(p for cell in self.cells.values() for p in cell.problems)


def _is_blank(text: str) -> bool:
    return all(unicodedata.category(ch) in _BLANK_CATEGORIES for ch in text)


def _ts_text(moment: datetime) -> str:
    """`moment` as `TS_FORMAT` writes it (strftime does not pad years before 1000)."""
    return f"{moment.year:04d}-{moment:%m-%d %H:%M:%S.%f}"


# Cells ------------------------------------------------------------------------------------------

# Any text, visible or not, Han and full-width included (no surrogates or private use).
_FUZZ_TEXT = st.text(
    st.characters(
        codec="utf-8", exclude_categories=("Cs", "Co", "Cn"), exclude_characters="\ufffd"
    ),
    max_size=8,
)
_VISIBLE = st.characters(categories=("L", "N", "P", "S"), exclude_characters="\ufffd")


@st.composite
def _text(draw: st.DrawFn) -> str:
    """Text holding at least one visible character; now and then a huge one."""
    if draw(st.integers(0, 40)) == 0:
        return draw(_VISIBLE) * draw(st.integers(20_000, 200_000))
    return draw(_FUZZ_TEXT) + draw(_VISIBLE) + draw(_FUZZ_TEXT)


def _blank_cell(spec: ColumnSpec) -> st.SearchStrategy[Cell]:
    missing = (f"{spec.name}: missing",) if spec.required else ()
    return st.sampled_from(_BLANKS).map(lambda text: Cell(text, None, missing))


def _text_cells(
    spec: ColumnSpec, values: st.SearchStrategy[str], *, utf8_only: bool = False
) -> st.SearchStrategy[Cell]:
    not_utf8 = st.tuples(values, st.sampled_from(_NOT_UTF8)).map(
        lambda pair: Cell(
            pair[0].encode() + pair[1],
            None,
            (f"{spec.name}: not valid UTF-8 text",),
        )
    )
    cells = [
        values.map(lambda text: Cell(text, None if _is_blank(text) else text)),
        _blank_cell(spec),
    ]
    return st.one_of(cells if utf8_only else [*cells, not_utf8])


def _number_text() -> st.SearchStrategy[str]:
    """An identity, card or bank number as typed: 12 to 19 digits, spaces or dashes."""
    return st.lists(
        st.tuples(st.integers(0, 9), st.sampled_from(["", "", "", " ", "-"])),
        min_size=12,
        max_size=19,
    ).map(lambda parts: "".join(f"{digit}{sep}" for digit, sep in parts).strip(" -"))


def _enum_cells(spec: ColumnSpec) -> st.SearchStrategy[Cell]:
    padded = st.tuples(
        st.sampled_from(spec.allowed), st.sampled_from(["", " ", "  "]), st.sampled_from(["", " "])
    ).map(lambda t: Cell(t[1] + t[0] + t[2], t[0]))
    wrong = st.sampled_from(_BAD_ENUMS).map(lambda v: Cell(v, None, (f"{spec.name}: not one of",)))
    return st.one_of(padded, padded, wrong, _blank_cell(spec))


def _timestamp_cells(spec: ColumnSpec) -> st.SearchStrategy[Cell]:
    valid = st.tuples(
        st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
        st.sampled_from(["T", " "]),
        st.sampled_from(["", "Z"]),
    ).map(lambda t: Cell(t[0].isoformat(sep=t[1]) + t[2], _ts_text(t[0])))
    invalid = st.sampled_from(_BAD_TIMESTAMPS).map(
        lambda v: Cell(v, None, (f"{spec.name}: not a valid timestamp",))
    )
    out_of_range = st.sampled_from(_OUT_OF_RANGE_TIMESTAMPS).map(
        lambda v: Cell(v, None, (f"{spec.name}: outside the years 1 to 9999",))
    )
    return st.one_of(valid, valid, invalid, out_of_range, _blank_cell(spec))


def _count_cells(spec: ColumnSpec) -> st.SearchStrategy[Cell]:
    valid = st.integers(0, 2**63 - 1).map(lambda n: Cell(str(n), n))
    negative = st.integers(-(2**63), -1).map(
        lambda n: Cell(str(n), None, (f"{spec.name}: negative",))
    )
    invalid = st.sampled_from(_BAD_COUNTS).map(
        lambda v: Cell(v, None, (f"{spec.name}: not a valid bigint",))
    )
    return st.one_of(valid, valid, negative, invalid, _blank_cell(spec))


def _account_id_cells(
    spec: ColumnSpec, *, accounts: bool, utf8_only: bool
) -> st.SearchStrategy[Cell]:
    ids = st.sampled_from(POOL + (() if accounts else (ORPHAN,)))
    known = ids.map(lambda v: Cell(v, v))
    if not accounts:
        return st.one_of(known, known, known, _blank_cell(spec))
    return st.one_of(known, known, known, _text_cells(spec, _text(), utf8_only=utf8_only))


def _cells(spec: ColumnSpec, *, accounts: bool, utf8_only: bool = False) -> st.SearchStrategy[Cell]:
    """Cells of column `spec`; `utf8_only`: no bytes that are not UTF-8 (Arrow strings)."""
    if spec.name == c.ACCOUNT_ID:
        return _account_id_cells(spec, accounts=accounts, utf8_only=utf8_only)
    if isinstance(spec.type, T.TimestampType):
        return _timestamp_cells(spec)
    if isinstance(spec.type, T.LongType):
        return _count_cells(spec)
    if spec.allowed:
        return _enum_cells(spec)
    if spec.sensitive:
        return _text_cells(spec, _number_text(), utf8_only=utf8_only)
    return _text_cells(spec, _text(), utf8_only=utf8_only)


def _csv_field(cell: Cell) -> bytes:
    raw = cell.written if isinstance(cell.written, bytes) else cell.written.encode("utf-8")
    if raw and (re.search(rb'[",\r\n]', raw) or raw != raw.strip()):
        return b'"' + raw.replace(b'"', b'""') + b'"'
    return raw


CsvDataset = tuple[list[str], list[Row], dict[str, str]]  # columns, rows, broken lines
ParquetDataset = tuple[pa.Table, list[Row]]


# Expected outcome -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the reader must make of one dataset's rows: reasons per quarantined row (by tag),
    the accepted rows, rows read, and tags of rows a never-closed quote ran into (by the tag of
    the row it ran into)."""

    reasons: dict[str, tuple[str, ...]]
    accepted: list[tuple[Any, ...]]
    read: int
    swallowed: dict[str, list[str]]
    duplicates: dict[str, list[Row]]


def _expected_values(row: Row, names: list[str]) -> tuple[Any, ...]:
    return tuple(row.cells[name].expected if name in row.cells else None for name in names)


def expect(
    name: str, rows: list[Row], *, structural: dict[str, str], accepted_ids: set[str] | None
) -> Expected:
    """The reader's result by the contract, from the rows as generated.

    `structural` maps the tag of a row whose line is broken to `malformed` or `unclosed:...`
    (the rows after an unclosed one are read into it); `accepted_ids` are the accepted accounts
    (None for the accounts dataset itself).
    """
    names = [col.name for col in CONTRACT[name].columns]
    reasons: dict[str, tuple[str, ...]] = {}
    swallowed: dict[str, list[str]] = {}
    clean: list[Row] = []
    read = 0
    for index, row in enumerate(rows):
        read += 1
        kind = structural.get(row.tag, "")
        if kind.startswith("unclosed"):
            reasons[row.tag] = ("row: ",)
            swallowed[row.tag] = [later.tag for later in rows[index + 1 :]]
            break
        if kind == "malformed":
            reasons[row.tag] = (MALFORMED,)
        elif row.problems:
            reasons[row.tag] = row.problems
        else:
            clean.append(row)
    by_id: dict[str, list[Row]] = {}
    accepted: list[tuple[Any, ...]] = []
    for row in clean:
        account_id = row.cells[c.ACCOUNT_ID].expected
        if accepted_ids is None:
            by_id.setdefault(account_id, []).append(row)
        elif account_id not in accepted_ids:
            reasons[row.tag] = (NOT_ACCEPTED,)
        else:
            accepted.append(_expected_values(row, names))
    duplicates = {key: group for key, group in by_id.items() if len(group) > 1}
    if accepted_ids is None:
        accepted = [_expected_values(group[0], names) for group in by_id.values()]
    return Expected(reasons, accepted, read, swallowed, duplicates)


# Reading the results back -----------------------------------------------------------------------


def _rows(frame: DataFrame) -> list[tuple[Any, ...]]:
    """Rows as tuples; timestamps as text in the session's time zone (UTC)."""
    columns = [
        F.date_format(field.name, TS_FORMAT).alias(field.name)
        if isinstance(field.dataType, T.TimestampType)
        else F.col(field.name)
        for field in frame.schema.fields
    ]
    return [tuple(row) for row in frame.select(*columns).collect()]


def _tag_of(record: str) -> str:
    parsed = json.loads(record)  # every record is JSON, a malformed line's too
    if CORRUPT in parsed:
        return str(parsed[CORRUPT]).split(",", 1)[0]
    return str(parsed[TAG])


def check_dataset(
    name: str, loaded: LoadedInputs, quarantine: list[Any], expected: Expected
) -> None:
    """The reader's result for dataset `name` is the expected one, row by row."""
    mine = [row for row in quarantine if row[c.DATASET] == name]
    by_tag: dict[str, Any] = {}
    for row in mine:
        tag = _tag_of(row[c.RECORD])
        assert tag not in by_tag, f"{name}: row {tag} quarantined twice"
        by_tag[tag] = row
    duplicate_tags = {
        row.tag for group in expected.duplicates.values() for row in group
    }  # one of each group is accepted, the others quarantined as duplicates
    unexpected = {
        t: by_tag[t][c.REASON] for t in set(by_tag) - duplicate_tags - set(expected.reasons)
    }
    assert not unexpected, (name, "quarantined, expected accepted", unexpected)
    lost = set(expected.reasons) - set(by_tag)
    assert not lost, (name, "not quarantined", {t: expected.reasons[t] for t in lost})
    for tag, prefixes in expected.reasons.items():
        reason = by_tag[tag][c.REASON]
        for prefix in prefixes:
            assert prefix in reason, (name, tag, prefix, reason)
        for other in ("missing", "not valid UTF-8", "not a valid", "outside the years"):
            if other in reason:
                assert any(other in prefix for prefix in prefixes), (name, tag, reason)
    for tag, later in expected.swallowed.items():
        record = by_tag[tag][c.RECORD]
        missing = [other for other in later if json.dumps(other)[1:-1] not in record]
        assert not missing, (
            name,
            tag,
            "rows read into it, not in its record",
            missing,
            record[:300],
        )

    accepted = _rows(loaded.accepted[name])
    if name == c.ACCOUNTS:
        names = [col.name for col in CONTRACT[name].columns]
        for key, group in expected.duplicates.items():
            quarantined = [row for row in group if row.tag in by_tag]
            assert len(quarantined) == len(group) - 1, (key, len(group))
            assert all(by_tag[row.tag][c.REASON] == DUPLICATE for row in quarantined)
            (kept,) = [row for row in group if row.tag not in by_tag]
            assert _expected_values(kept, names) in accepted
        singles = [values for values in expected.accepted if values[0] not in expected.duplicates]
        assert Counter(v for v in accepted if v[0] not in expected.duplicates) == Counter(singles)
        assert len(accepted) == len(expected.accepted)
    else:
        assert not expected.duplicates
        assert Counter(accepted) == Counter(expected.accepted), name

    counts = loaded.counts[name]
    assert counts.read == expected.read, name
    assert (counts.accepted, counts.quarantined) == (len(accepted), len(mine)), name
    assert counts.read == counts.accepted + counts.quarantined, name


def check_no_raw_numbers(quarantine: list[Any], datasets: list[list[Row]]) -> None:
    """No identity or card number written (as typed or as bare digits) is in the quarantine."""
    text = "\n".join(f"{row[c.RECORD]}\n{row[c.REASON]}" for row in quarantine)
    for rows in datasets:
        for row in rows:
            for column in (c.ID_NUMBER, c.INSTRUMENT_ID):
                written = row.cells[column].written if column in row.cells else None
                if isinstance(written, bytes):
                    written = written.decode("utf-8", errors="replace")
                digits = re.sub(r"[^0-9]", "", written or "")
                if len(digits) >= 12:
                    assert written not in text and digits not in text, (row.tag, column)


def _load(spark: SparkSession, folder: Path) -> tuple[LoadedInputs, list[Any]]:
    loaded = load_inputs(spark, folder, run_id="fuzz")
    return loaded, loaded.quarantine.collect()


# CSV --------------------------------------------------------------------------------------------


@st.composite
def csv_dataset(draw: st.DrawFn, name: str) -> CsvDataset:
    """Columns (the required ones, some optional ones, in any order), rows, and which row's line
    is broken: `malformed` (one field too many or too few) or `unclosed:<field>` (a quote opens
    that field and is never closed)."""
    spec = CONTRACT[name]
    optional = [col.name for col in spec.columns if not col.required]
    chosen = draw(st.lists(st.sampled_from(optional), unique=True, max_size=8))
    columns = draw(st.permutations([col.name for col in spec.columns if col.required] + chosen))
    by_name = {col.name: col for col in spec.columns}
    rows = [
        Row(
            f"{name[0]}-{i}",
            {col: draw(_cells(by_name[col], accounts=name == c.ACCOUNTS)) for col in columns},
        )
        for i in range(draw(st.integers(6, 16)))
    ]
    structural: dict[str, str] = {}
    for kind in draw(st.lists(st.sampled_from(["malformed", "unclosed"]), max_size=2)):
        if kind == "unclosed":
            kind = f"unclosed:{draw(st.integers(1, len(columns)))}"
        structural[rows[draw(st.integers(0, len(rows) - 1))].tag] = kind
    return [TAG, *columns], rows, structural


def write_csv(path: Path, columns: list[str], rows: list[Row], structural: dict[str, str]) -> None:
    lines = [",".join(columns).encode()]
    unclosed = False
    for row in rows:
        fields = [row.tag.encode()] + [_csv_field(row.cells[col]) for col in columns[1:]]
        kind = structural.get(row.tag)
        if unclosed:
            # Read into the open field: no quote may close it.
            lines.append(b",".join(fields).replace(b'"', b""))
            continue
        if kind == "malformed":
            fields = fields[:-1] if len(fields) > 2 else [*fields, b"one too many"]
        elif kind is not None:
            position = int(kind.split(":")[1])
            # Quote-free from here on, or a quote further on would close the field.
            fields[position:] = [field.replace(b'"', b"") for field in fields[position:]]
            fields[position] = b'"never closed ' + fields[position]
            unclosed = True
        lines.append(b",".join(fields))
    path.write_bytes(b"\n".join(lines) + b"\n")


@FUZZ
@given(
    accounts=csv_dataset(c.ACCOUNTS),
    payments=csv_dataset(c.PAYMENT_INSTRUMENTS),
    logistics=csv_dataset(c.LOGISTICS),
    signals=csv_dataset(c.ENFORCEMENT_SIGNALS),
)
def test_csv_bad_rows_are_quarantined_and_counts_reconcile(
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
    accounts: CsvDataset,
    payments: CsvDataset,
    logistics: CsvDataset,
    signals: CsvDataset,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")  # one per example
    datasets = {
        c.ACCOUNTS: accounts,
        c.PAYMENT_INSTRUMENTS: payments,
        c.LOGISTICS: logistics,
        c.ENFORCEMENT_SIGNALS: signals,
    }
    for name, (columns, rows, structural) in datasets.items():
        write_csv(folder / f"{name}.csv", columns, rows, structural)
    loaded, quarantine = _load(spark, folder)

    expected_accounts = expect(c.ACCOUNTS, accounts[1], structural=accounts[2], accepted_ids=None)
    accepted_ids = {values[0] for values in expected_accounts.accepted}
    check_dataset(c.ACCOUNTS, loaded, quarantine, expected_accounts)
    for name in (c.PAYMENT_INSTRUMENTS, c.LOGISTICS, c.ENFORCEMENT_SIGNALS):
        _, rows, structural = datasets[name]
        check_dataset(
            name,
            loaded,
            quarantine,
            expect(name, rows, structural=structural, accepted_ids=accepted_ids),
        )
    check_no_raw_numbers(quarantine, [rows for _, rows, _ in datasets.values()])
    spark.catalog.clearCache()


# Parquet ----------------------------------------------------------------------------------------

_TEXT_TYPES = (pa.string(), pa.large_string(), pa.binary())
_TIMESTAMP_TYPES = (
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("us"),
    pa.timestamp("ms", tz="UTC"),
    pa.timestamp("s"),
    pa.int64(),
    pa.string(),
    pa.date32(),
)
_COUNT_TYPES = (pa.int64(), pa.int32(), pa.float64(), pa.string(), pa.decimal128(38, 2))
_EPOCH_UNITS = {"s": 10**6, "ms": 10**3, "us": 1}
_LONG_EXTREMES = {  # the smallest and largest long, read as nanoseconds
    -(2**63): "1677-09-21 00:12:43.145224",
    2**63 - 1: "2262-04-11 23:47:16.854776",
}
_EXTRA_COLUMNS = (
    ("a.b", pa.int64(), [1, None]),
    ("x`y", pa.string(), ["q", "`"]),
    ("列 名", pa.list_(pa.int64()), [[1, 2], None]),
    ("nested", pa.struct([("k", pa.string())]), [{"k": "v"}, None]),
    ("blob", pa.binary(), [b"\x00\xff", b""]),
    ("tags", pa.map_(pa.string(), pa.int64()), [[("a", 1)], None]),
)


def _ticks(moment: datetime, unit: str) -> int:
    """`moment` (naive, UTC) as a count of `unit` since 1970, rounded down."""
    return (moment - EPOCH) // timedelta(microseconds=_EPOCH_UNITS[unit])


@st.composite
def parquet_cell(
    draw: st.DrawFn, spec: ColumnSpec, arrow_type: pa.DataType, accounts: bool
) -> Cell:
    """A value of column `spec` stored as `arrow_type`, and what the reader must make of it."""
    name = spec.name
    if draw(st.integers(0, 9)) == 0:
        return Cell(None, None, (f"{name}: missing",) if spec.required else ())
    if isinstance(spec.type, T.TimestampType):
        return draw(_parquet_timestamp(name, arrow_type))
    if isinstance(spec.type, T.LongType):
        return draw(_parquet_count(name, arrow_type))
    if arrow_type == pa.int64():  # account ids written as numbers
        value = int(draw(st.sampled_from(POOL + (() if accounts else (ORPHAN,)))))
        return Cell(value, str(value))
    if arrow_type == pa.binary():
        cell = draw(_cells(spec, accounts=accounts))
        written = cell.written if isinstance(cell.written, bytes) else cell.written.encode()
        return Cell(written, cell.expected, cell.problems)
    # Arrow strings are valid UTF-8: bytes that are not come in binary columns only.
    return draw(_cells(spec, accounts=accounts, utf8_only=True))


def _parquet_timestamp(name: str, arrow_type: pa.DataType) -> st.SearchStrategy[Cell]:
    moments = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30))
    if arrow_type == pa.int64():
        # An epoch's unit is told by its magnitude, which is unambiguous from 1974 to 5138.
        epochs = st.tuples(
            st.datetimes(datetime(1974, 1, 1), datetime(2200, 1, 1)),
            st.sampled_from(sorted(_EPOCH_UNITS)),
        ).map(
            lambda t: Cell(
                _ticks(t[0], t[1]),
                _ts_text(EPOCH + _ticks(t[0], t[1]) * timedelta(microseconds=_EPOCH_UNITS[t[1]])),
            )
        )
        extremes = st.sampled_from(sorted(_LONG_EXTREMES)).map(lambda v: Cell(v, _LONG_EXTREMES[v]))
        return st.one_of(epochs, epochs, extremes)
    if arrow_type == pa.string():
        return _timestamp_cells(ColumnSpec(name, T.TimestampType()))
    if arrow_type == pa.date32():
        return st.dates(date(1, 1, 1), date(9999, 12, 31)).map(
            lambda d: Cell(d, _ts_text(datetime(d.year, d.month, d.day)))
        )
    unit = arrow_type.unit
    step = timedelta(microseconds=_EPOCH_UNITS[unit])
    valid = moments.map(lambda m: Cell(_ticks(m, unit), _ts_text(EPOCH + _ticks(m, unit) * step)))
    if unit != "us":
        return valid
    far = st.sampled_from([2**62, -(2**62)]).map(
        lambda v: Cell(v, None, (f"{name}: outside the years 1 to 9999",))
    )
    return st.one_of(valid, valid, far)


def _parquet_count(name: str, arrow_type: pa.DataType) -> st.SearchStrategy[Cell]:
    negative, invalid = (f"{name}: negative",), (f"{name}: not a valid bigint",)
    if arrow_type == pa.string():
        return _count_cells(ColumnSpec(name, T.LongType(), non_negative=True))
    if arrow_type in (pa.int32(), pa.int64()):
        bits = arrow_type.bit_width - 1
        return st.integers(-(2**bits), 2**bits - 1).map(
            lambda n: Cell(n, n) if n >= 0 else Cell(n, None, negative)
        )
    if arrow_type == pa.float64():
        whole = st.integers(0, 2**53).map(lambda n: Cell(float(n), n))
        other = st.sampled_from([1.5, 0.25, -2.5, -2.0, 1e30, float("nan"), float("inf")]).map(
            lambda v: Cell(v, None, negative if v == -2.0 else invalid)
        )
        return st.one_of(whole, other)
    whole = st.integers(0, 10**12).map(lambda n: Cell(Decimal(n).quantize(Decimal("0.01")), n))
    fractional = st.sampled_from(["1.50", "0.01"]).map(lambda v: Cell(Decimal(v), None, invalid))
    return st.one_of(whole, fractional)


def _arrow_types(spec: ColumnSpec) -> tuple[pa.DataType, ...]:
    if isinstance(spec.type, T.TimestampType):
        return _TIMESTAMP_TYPES
    if isinstance(spec.type, T.LongType):
        return _COUNT_TYPES
    if spec.name == c.ACCOUNT_ID:
        return (*_TEXT_TYPES, pa.int64())
    return _TEXT_TYPES


@st.composite
def parquet_dataset(draw: st.DrawFn, name: str) -> ParquetDataset:
    spec = CONTRACT[name]
    optional = [col for col in spec.columns if not col.required]
    chosen = [col for col in spec.columns if col.required] + draw(
        st.lists(st.sampled_from(optional), unique_by=lambda col: col.name, max_size=8)
    )
    types = {col.name: draw(st.sampled_from(_arrow_types(col))) for col in chosen}
    accounts = name == c.ACCOUNTS
    rows = [
        Row(
            f"{name[0]}-{i}",
            {col.name: draw(parquet_cell(col, types[col.name], accounts)) for col in chosen},
        )
        for i in range(draw(st.integers(6, 16)))
    ]
    arrays: dict[str, pa.Array] = {TAG: pa.array([row.tag for row in rows])}
    for col in chosen:
        values = [row.cells[col.name].written for row in rows]
        arrays[col.name] = pa.array(values, type=types[col.name])
    extras = st.lists(st.sampled_from(_EXTRA_COLUMNS), max_size=3, unique_by=lambda e: e[0])
    for extra, arrow_type, values in draw(extras):
        arrays[extra] = pa.array(
            [values[i % len(values)] for i in range(len(rows))], type=arrow_type
        )
    return pa.table(arrays), rows


@FUZZ
@given(
    accounts=parquet_dataset(c.ACCOUNTS),
    payments=parquet_dataset(c.PAYMENT_INSTRUMENTS),
    logistics=parquet_dataset(c.LOGISTICS),
    signals=parquet_dataset(c.ENFORCEMENT_SIGNALS),
)
def test_parquet_of_any_column_types_quarantines_bad_rows_and_counts_reconcile(
    spark: SparkSession,
    tmp_path_factory: pytest.TempPathFactory,
    accounts: ParquetDataset,
    payments: ParquetDataset,
    logistics: ParquetDataset,
    signals: ParquetDataset,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")  # one per example
    datasets = {
        c.ACCOUNTS: accounts,
        c.PAYMENT_INSTRUMENTS: payments,
        c.LOGISTICS: logistics,
        c.ENFORCEMENT_SIGNALS: signals,
    }
    for name, (table, _) in datasets.items():
        pq.write_table(table, folder / f"{name}.parquet")
    loaded, quarantine = _load(spark, folder)

    expected_accounts = expect(c.ACCOUNTS, accounts[1], structural={}, accepted_ids=None)
    accepted_ids = {values[0] for values in expected_accounts.accepted}
    check_dataset(c.ACCOUNTS, loaded, quarantine, expected_accounts)
    for name in (c.PAYMENT_INSTRUMENTS, c.LOGISTICS, c.ENFORCEMENT_SIGNALS):
        check_dataset(
            name,
            loaded,
            quarantine,
            expect(name, datasets[name][1], structural={}, accepted_ids=accepted_ids),
        )
    check_no_raw_numbers(quarantine, [rows for _, rows in datasets.values()])
    spark.catalog.clearCache()


# Files the reader cannot use ----------------------------------------------------------------


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


_GOOD = _parquet_bytes(pa.table({c.ACCOUNT_ID: ["A1", "A2"]}))


def _delta_with_a_file_gone(folder: Path) -> Path:
    table = folder / c.ACCOUNTS
    write_deltalake(str(table), pa.table({c.ACCOUNT_ID: ["A1", "A2"]}))
    for part in table.glob("*.parquet"):
        part.unlink()
    return table


def _folder_with_a_corrupt_part(folder: Path) -> Path:
    parts = folder / f"{c.ACCOUNTS}.parquet"
    parts.mkdir()
    (parts / "part-0.parquet").write_bytes(_GOOD)
    (parts / "part-1.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    return parts


def _file(name: str, content: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / name).write_bytes(content)
        return folder / name

    return write


# How to write the dataset (returns its path, which the message starts with), and words the
# message must hold.
UNUSABLE: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "parquet_holding_csv_text": (
        _file("accounts.parquet", b"account_id\nA1\n"),
        ("not a Parquet file",),
    ),
    "parquet_empty": (_file("accounts.parquet", b""), ("not a Parquet file",)),
    "parquet_truncated": (_file("accounts.parquet", _GOOD[: len(_GOOD) // 2]), ("parquet",)),
    "parquet_folder_with_a_corrupt_part": (
        _folder_with_a_corrupt_part,
        ("part-1.parquet", "footer"),
    ),
    "delta_data_file_gone": (_delta_with_a_file_gone, ("delta", "does not exist")),
    "csv_holding_parquet": (_file("accounts.csv", _GOOD), ("a Parquet file", "not UTF-8 CSV")),
    "csv_gzipped": (
        _file("accounts.csv", gzip.compress(b"account_id\nA1\n")),
        ("gzip", "not UTF-8 CSV"),
    ),
    "csv_in_utf16": (_file("accounts.csv", "account_id\nA1\n".encode("utf-16")), ("UTF-16",)),
    "csv_header_not_utf8": (
        _file("accounts.csv", b"account_id,na\xffme\nA1,x\n"),
        ("header is not UTF-8",),
    ),
    "csv_header_names_a_column_twice": (
        _file("accounts.csv", b"account_id,phone,PHONE\nA1,1,2\n"),
        ("'PHONE' appears twice", "columns 2 and 3"),
    ),
    "csv_line_of_too_many_fields": (
        _file("accounts.csv", b"account_id,phone\nA1," + b"x," * 30_000 + b"\n"),
        ("more than 20480 fields",),
    ),
    "parquet_column_of_a_type_that_cannot_be_read": (
        _file(
            "accounts.parquet",
            _parquet_bytes(pa.table({c.ACCOUNT_ID: ["A1"], c.REGISTERED_AT: [[1, 2]]})),
        ),
        ("column 'registered_at' holds array<bigint>", "cannot be read as timestamp"),
    ),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_unusable_file_is_one_input_error_naming_the_file(
    spark: SparkSession, tmp_path: Path, case: str
) -> None:
    """What the job turns into exit status 2 and one line on stderr (`error: <message>`)."""
    make, words = UNUSABLE[case]
    dataset = make(tmp_path)
    with pytest.raises(InputError) as raised:
        load_inputs(spark, tmp_path, run_id="bad")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{dataset}: "), message
    for word in words:
        assert word in message, message
