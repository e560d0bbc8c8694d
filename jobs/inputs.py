"""Read the contract's input datasets, check them, and split accepted rows from quarantined ones.

A dataset is found by name in IN_DIR as `NAME.parquet` (file or folder), `NAME/` holding a Delta
table, or `NAME.csv`. A missing required dataset or column is an `InputError` (exit 2) naming
the file and the column, and so is a file that cannot be read as its format (not a parquet file, not
UTF-8 text, a CSV header naming a column twice, a column whose type cannot hold the contract's).
A row with a malformed value is quarantined with its reason; accepted plus quarantined rows
equal the rows read, for every dataset.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial, reduce
from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from features import columns as c
from jobs.concurrency import run_together
from jobs.storage import Location, Storage
from resolution.errors import InputError
from resolution.incremental import QUARANTINED_ROWS

logger = logging.getLogger(__name__)

CORRUPT = "_corrupt_record"
RECORD = "_record"
REASONS = "_reasons"
# Set on the one CSV record a never-closed quote ran into (the reason), else null.
UNCLOSED = "_unclosed_quote"
_ROW = "_row"
_MAX_SHOWN_VALUE = 40
# The rest of a quoted CSV field after its opening quote, through its closing quote.
_QUOTED_REST = re.compile(r'(?:[^"]|"")*"(?!")')
# univocity's default, set explicitly so that the error of a longer line can say it.
_CSV_MAX_COLUMNS = 20480
# A text value made only of whitespace, separators (no-break, ideographic), control and format
# characters (zero-width space, byte-order mark) is empty: `trim` removes ASCII spaces only.
_BLANK = r"^[\s\p{Z}\p{Cc}\p{Cf}]*$"
# Any character joining a row's text values for its UTF-8 check: ASCII, so that no two
# values' broken byte sequences can join into a valid one.
_TEXT_SEPARATOR = "\n"
_TEXT_NOT_UTF8 = "_text_not_utf8"
# What Python's `datetime`, pandas' readers and every downstream tool can hold.
_FIRST_YEAR, _LAST_YEAR = 1, 9999
# File signatures of formats sometimes saved under a .csv name by mistake.
_NOT_CSV = (
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"PK\x03\x04", "a zip archive (an Excel workbook?)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel or other OLE file"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: T.DataType
    required: bool = False
    allowed: tuple[str, ...] = ()
    sensitive: bool = False
    non_negative: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = False

    @property
    def schema(self) -> T.StructType:
        return T.StructType([T.StructField(col.name, col.type, True) for col in self.columns])


_S, _TS, _L = T.StringType(), T.TimestampType(), T.LongType()

CONTRACT: dict[str, DatasetSpec] = {
    c.ACCOUNTS: DatasetSpec(
        c.ACCOUNTS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.PLATFORM, _S),
            ColumnSpec(c.REGISTERED_AT, _TS),
            ColumnSpec(c.SHOP_NAME, _S),
            ColumnSpec(c.LEGAL_NAME, _S),
            ColumnSpec(c.ID_TYPE, _S, allowed=c.ID_TYPES),
            ColumnSpec(c.ID_NUMBER, _S, sensitive=True),
            ColumnSpec(c.PHONE, _S),
            ColumnSpec(c.EMAIL, _S),
            ColumnSpec(c.REGISTRATION_IP, _S),
            ColumnSpec(c.DEVICE_ID, _S),
            ColumnSpec(c.COUNTRY, _S),
            ColumnSpec(c.PROVINCE, _S),
            ColumnSpec(c.CITY, _S),
            ColumnSpec(c.ADDRESS, _S),
        ),
        required=True,
    ),
    c.PAYMENT_INSTRUMENTS: DatasetSpec(
        c.PAYMENT_INSTRUMENTS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.INSTRUMENT_TYPE, _S, required=True, allowed=c.INSTRUMENT_TYPES),
            ColumnSpec(c.INSTRUMENT_ID, _S, required=True, sensitive=True),
            ColumnSpec(c.HOLDER_NAME, _S),
            ColumnSpec(c.BANK_NAME, _S),
            ColumnSpec(c.ADDED_AT, _TS),
        ),
    ),
    c.LOGISTICS: DatasetSpec(
        c.LOGISTICS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.ROLE, _S, required=True, allowed=c.LOGISTICS_ROLES),
            ColumnSpec(c.CONTACT_NAME, _S),
            ColumnSpec(c.CONTACT_PHONE, _S),
            ColumnSpec(c.ADDRESS, _S),
            ColumnSpec(c.CITY, _S),
            ColumnSpec(c.PROVINCE, _S),
            ColumnSpec(c.POSTCODE, _S),
            ColumnSpec(c.COUNTRY, _S),
            ColumnSpec(c.SHIPMENT_COUNT, _L, non_negative=True),
            ColumnSpec(c.FIRST_USED_AT, _TS),
            ColumnSpec(c.LAST_USED_AT, _TS),
        ),
    ),
    c.ENFORCEMENT_SIGNALS: DatasetSpec(
        c.ENFORCEMENT_SIGNALS,
        (
            ColumnSpec(c.ACCOUNT_ID, _S, required=True),
            ColumnSpec(c.SIGNAL_TYPE, _S, required=True, allowed=c.SIGNAL_TYPES),
            ColumnSpec(c.SIGNAL_COUNT, _L, non_negative=True),
            ColumnSpec(c.OBSERVED_AT, _TS),
        ),
    ),
}


@dataclass(frozen=True)
class DatasetCounts:
    """Rows read, accepted and quarantined for one dataset; `read == accepted + quarantined`."""

    read: int
    accepted: int
    quarantined: int


@dataclass(frozen=True)
class LoadedInputs:
    """Accepted rows per dataset (contract columns and types), the quarantine and the counts.

    `account_ids`: `(account_id)` of every accepted account, once each. After a load with
    `only` (an incremental run) `accepted` holds the rows read again, `account_ids` all the
    accepted accounts. `quarantined_accounts`: `(account_id, quarantined_rows)` of the
    accounts with a quarantined row in accounts, payment_instruments or logistics (the rows
    an incremental run reads again)."""

    accepted: dict[str, DataFrame]
    quarantine: DataFrame
    counts: dict[str, DatasetCounts]
    sources: dict[str, str]
    account_ids: DataFrame
    quarantined_accounts: DataFrame
    persisted: tuple[DataFrame, ...] = ()

    def release(self) -> None:
        """Unpersist the flagged frames `load_inputs` persisted (at the end of a run)."""
        for frame in self.persisted:
            frame.unpersist(blocking=False)


@dataclass(frozen=True)
class RawDataset:
    """One dataset found in the input folder, as read (`frame`: nothing checked but the
    file's readability and its required columns)."""

    name: str
    path: Location
    fmt: str
    frame: DataFrame

    def hashed(self) -> DataFrame:
        """The columns whose change can change what the job makes of a row: the contract's
        columns present, and a CSV line's parse problems (for `input_fingerprints`)."""
        wanted = [col.name for col in CONTRACT[self.name].columns] + [CORRUPT, UNCLOSED]
        return self.frame.select(*[_col(name) for name in wanted if name in self.frame.columns])


@dataclass(frozen=True)
class RawInputs:
    """The datasets `open_inputs` found (absent optional ones are not in `datasets`)."""

    in_dir: Location
    datasets: dict[str, RawDataset]

    def hashed(self, spark: SparkSession, name: str) -> DataFrame:
        """`RawDataset.hashed` of dataset `name`, or an empty frame of its contract columns."""
        found = self.datasets.get(name)
        return empty_dataset(spark, name) if found is None else found.hashed()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Actions that read several datasets: a file that cannot be read raises
        `_unreadable` naming the dataset whose file the error names (else the folder)."""
        try:
            yield
        except (Py4JJavaError, PySparkException) as error:
            if not _is_read_failure(error):
                raise
            text = str(error)
            for found in self.datasets.values():
                if str(found.path).rstrip("/").rsplit("/", 1)[-1] in text:
                    raise _unreadable(found.path, found.fmt, error) from error
            raise _unreadable(self.in_dir, "input", error) from error


@dataclass(frozen=True)
class Reread:
    """What an incremental run reads again (`load_inputs(only=...)`).

    In every dataset but `whole`, only the rows of the accounts `accounts` (`(account_id)`:
    new, changed, or with a row quarantined before) and the rows without an account id are
    conformed and checked; every other row is the same as when the base run read it, accepted
    then (its account was accepted and none of its rows quarantined), and is counted as
    accepted now. `kept`: `(account_id)` of those accounts (unchanged since the base run),
    accepted with their rows unread. `broadcast`: `accounts` is small enough to broadcast."""

    accounts: DataFrame
    kept: DataFrame
    broadcast: bool
    whole: tuple[str, ...] = (c.ENFORCEMENT_SIGNALS,)


def _require_contract_columns(raw: DataFrame, spec: DatasetSpec, path: Path | Location) -> None:
    present = [name for name in raw.columns if name not in (CORRUPT, UNCLOSED)]
    missing = [col.name for col in spec.columns if col.required and col.name not in present]
    if missing:
        raise InputError(
            f"{path}: required column {missing[0]!r} is missing "
            f"(found: {', '.join(present) or 'no columns'})"
        )


def open_inputs(spark: SparkSession, in_dir: Path | Location | str) -> RawInputs:
    """Find and open every dataset in `in_dir` (a local folder or a URI) as read: an
    `InputError` for a missing folder, required dataset or required column, or a file that
    cannot be read as its format. No row is checked yet (`load_inputs` does)."""
    storage = Storage(spark)
    in_dir = Location.parse(in_dir)
    if not storage.is_dir(in_dir):
        raise InputError(f"{in_dir}: input folder not found")
    datasets: dict[str, RawDataset] = {}
    for name in c.INPUT_DATASETS:
        spec = CONTRACT[name]
        located = locate_dataset(in_dir, name, storage=storage)
        if located is None:
            if spec.required:
                raise InputError(
                    f"{in_dir / (name + '.parquet')}: required dataset {name!r} not found "
                    f"(looked for {name}.parquet, {name}.csv and a Delta table {name}/)"
                )
            logger.info("dataset %s: absent (optional), treated as empty", name)
            continue
        path, fmt = located
        raw = _read_raw(spark, path, fmt)
        _require_contract_columns(raw, spec, path)
        datasets[name] = RawDataset(name, path, fmt, raw)
    return RawInputs(in_dir, datasets)


def locate_dataset(
    in_dir: Path | Location, name: str, *, storage: Storage | None = None
) -> tuple[Location, str] | None:
    """`(location, format)` of dataset `name` in `in_dir`, or None when it is absent. A URI
    `in_dir` (object storage) needs a `storage` with a session to ask Hadoop's filesystem."""
    folder_of = Location.parse(in_dir)
    storage = storage or Storage(None)
    found: list[tuple[Location, str]] = []
    parquet, csv = folder_of / f"{name}.parquet", folder_of / f"{name}.csv"
    folder = folder_of / name
    if storage.exists(parquet):
        found.append((parquet, "parquet"))
    if storage.is_file(csv):
        found.append((csv, "csv"))
    if storage.is_dir(folder / "_delta_log"):
        found.append((folder, "delta"))
    if len(found) > 1:
        names = ", ".join(str(path) for path, _ in found)
        raise InputError(
            f"{folder_of}: dataset {name!r} is given more than once ({names}); keep one"
        )
    return found[0] if found else None


def _quoted(name: str) -> str:
    """`name` as a column reference Spark takes literally (dots and backticks included)."""
    return "`" + name.replace("`", "``") + "`"


def _col(name: str) -> Column:
    return F.col(_quoted(name))


def _error_line(error: BaseException) -> str:
    """One line of a Spark or JVM error for a user: its deepest cause, else its first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [
        line.removeprefix("Caused by:").strip() for line in lines if line.startswith("Caused by:")
    ]
    line = causes[-1] if causes else (lines[0] if lines else type(error).__name__)
    line = re.sub(r"^[\w.$]+(Exception|Error): ", "", line).removeprefix(": ")
    return line[:300]


def _is_read_failure(error: BaseException) -> bool:
    """Whether a failed Spark action failed reading a file (rather than computing on rows)."""
    text = str(error)
    return "FAILED_READ_FILE" in text or "TextParsingException" in text


def _unreadable(path: Path | Location, fmt: str, error: BaseException) -> InputError:
    text = str(error)
    if "TextParsingException" in text and str(_CSV_MAX_COLUMNS) in text:
        return InputError(
            f"{path}: a line has more than {_CSV_MAX_COLUMNS} fields, so the file cannot be split "
            "into rows; check its separators and quoting"
        )
    failed = re.search(r"while reading file (\S+?)\.?\s", text)
    where = f" (file {failed.group(1)})" if failed else ""
    return InputError(f"{path}: cannot be read as {fmt}{where}: {_error_line(error)}")


@contextmanager
def _reading(path: Path | Location, fmt: str) -> Iterator[None]:
    """Actions that read every file of a dataset: a corrupt part file, a data file a Delta
    log names but that is gone, a CSV line too long to parse raise `_unreadable`."""
    try:
        yield
    except (Py4JJavaError, PySparkException) as error:
        if _is_read_failure(error):
            raise _unreadable(path, fmt, error) from error
        raise


@contextmanager
def _text_lines(path: Path) -> Iterator[Iterator[str]]:
    """The lines of `path` as text, line ends kept (`\n`, `\r\n` or a lone `\r`, as Spark reads
    them); bytes that are not UTF-8 become U+FFFD instead of failing."""
    with (
        path.open("rb") as stream,
        io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="") as text,
    ):
        yield iter(text)


def read_csv_header(path: Path, *, shown: str | Location | None = None) -> list[str]:
    """The column names in the header of CSV file `path`, as written (less a byte-order mark and
    surrounding whitespace; an empty name becomes `_c<position>`, as Spark names it).

    Raises `InputError` when the file is not UTF-8 CSV text or names a column twice (Spark
    compares names ignoring case, so `phone` and `PHONE` are the same column to it). Errors
    name `shown` (the URI a local copy was made from), else `path`.
    """
    where = str(shown) if shown is not None else str(path)
    try:
        with path.open("rb") as stream:
            head = stream.read(8)
        for signature, what in _NOT_CSV:
            if head.startswith(signature):
                raise InputError(
                    f"{where}: is {what}, not UTF-8 CSV text; convert it, or give a parquet file "
                    f"as {Path(where).with_suffix('.parquet').name}"
                )
        with _text_lines(path) as lines:
            header = next(csv.reader(lines), [])
    except (OSError, csv.Error) as error:
        raise InputError(f"{where}: cannot be read as csv: {error}") from error
    names = [raw.lstrip("\ufeff").strip() or f"_c{i}" for i, raw in enumerate(header)]
    for name in names:
        if "\ufffd" in name or "\x00" in name:
            raise InputError(
                f"{where}: header is not UTF-8 text (found {name[:_MAX_SHOWN_VALUE]!r}); "
                "save the file as UTF-8 CSV"
            )
    seen: dict[str, int] = {}
    for position, name in enumerate(names):
        first = seen.setdefault(name.lower(), position)
        if first != position:
            raise InputError(
                f"{where}: column {name!r} appears twice in the header (columns {first + 1} and "
                f"{position + 1}, names compared ignoring case); rename or drop one"
            )
    return names


def unclosed_quote_line(path: Path) -> int | None:
    """The line on which a double quote opens a CSV field that the file never closes, or None.

    Follows the parser Spark uses (univocity, with `"` as quote and escape): a quote opens a
    quoted field only at the start of a field, `""` inside one is a quote, and a quote followed
    by anything else closes it; a quote inside an unquoted field is a plain character. A field
    left open swallows the rest of the file into one row. Lines without a quote cost one test.
    """
    inside, opened_at = False, None
    with _text_lines(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not inside and '"' not in line:
                continue
            position = 0
            if inside:
                closed = _QUOTED_REST.match(line)
                if closed is None:
                    continue
                inside = False
                position = line.find(",", closed.end()) + 1
                if position == 0:
                    continue
            while True:
                if line.startswith('"', position):
                    closed = _QUOTED_REST.match(line, position + 1)
                    if closed is None:
                        inside, opened_at = True, number
                        break
                    position = closed.end()
                position = line.find(",", position) + 1
                if position == 0:
                    break
    return opened_at if inside else None


def _read_csv(spark: SparkSession, path: Location) -> DataFrame:
    # The header and the quoting are checked in Python on the file's bytes (a local copy of a
    # file in object storage); Spark reads the file where it is.
    with Storage(spark).local_copy(path) as local:
        header = read_csv_header(local, shown=path)
        opened_at = unclosed_quote_line(local)
    # The schema is applied by position: header names as written, every column text.
    schema = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in header]
        + [T.StructField(CORRUPT, T.StringType(), True)]
    )
    raw = (
        spark.read.schema(schema)
        .option("header", True)
        .option("multiLine", True)
        .option("escape", '"')
        .option("encoding", "UTF-8")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("maxColumns", _CSV_MAX_COLUMNS)
        .csv(str(path))
    )
    if opened_at is None:
        return raw.withColumn(UNCLOSED, F.lit(None).cast("string"))
    # A multi-line CSV file is one partition read in file order, so the ids increase with the
    # records and the largest is the last record: the one the open quote ran into.
    numbered = raw.withColumn(_ROW, F.monotonically_increasing_id())
    try:
        last = numbered.agg(F.max(_ROW).alias(_ROW)).first()
    except (Py4JJavaError, PySparkException) as error:
        if _is_read_failure(error):
            raise _unreadable(path, "csv", error) from error
        raise
    reason = (
        f"row: the quoted field opened on line {opened_at} is never closed, so the rest of the "
        "file was read into this row"
    )
    logger.warning("%s: %s", path, reason)
    assert last is not None  # an aggregate without grouping has one row
    return numbered.withColumn(
        UNCLOSED, F.when(F.col(_ROW) == F.lit(last[_ROW]), F.lit(reason))
    ).drop(_ROW)


def _read_raw(spark: SparkSession, path: Location, fmt: str) -> DataFrame:
    if fmt == "csv":
        return _read_csv(spark, path)
    try:
        if fmt == "delta":
            return spark.read.format("delta").load(str(path))
        return spark.read.parquet(str(path))
    except (Py4JJavaError, PySparkException) as error:
        # Nothing but reading the file (its footers or log) happens here: any failure is the
        # file's. A Python error (a bug of ours) is not caught.
        raise _unreadable(path, fmt, error) from error


def _shown(value: Column) -> Column:
    return _masked_numbers(F.substring(value.cast("string"), 1, _MAX_SHOWN_VALUE))


def _masked(value: Column) -> Column:
    """A sensitive number reduced to its last four characters, for the quarantine record."""
    compact = F.regexp_replace(value.cast("string"), r"[\s\-]", "")
    last_four = F.when(F.length(compact) >= 8, F.substring(compact, -4, 4)).otherwise(F.lit(""))
    return F.when(value.isNull(), F.lit(None)).otherwise(F.concat(F.lit("****"), last_four))


def _masked_line(line: Column) -> Column:
    """A malformed CSV line with every run of 8+ digits (possible numbers) masked."""
    return F.regexp_replace(line, r"[0-9][0-9 \-]{6,}[0-9]", "****")


def _record_field(
    value: Column, given: T.DataType, sensitive: bool, unclosed: Column | None
) -> Column:
    """One field of the quarantine record, so that the record stays JSON and holds no number.

    A sensitive number is masked to its last four; other text has its digit runs masked when it
    holds a long number; other types are kept. The row a never-closed quote ran into holds the
    rest of the file, which is kept (as a malformed line is) with every 8+ digit run masked, and
    a sensitive field of it loses its first line (the row's own number) entirely.
    """
    if not isinstance(given, T.StringType):
        return _masked(value) if sensitive else value
    masked = _masked(value) if sensitive else _masked_numbers(value)
    if unclosed is None:
        return masked
    rest = F.regexp_replace(value, r"^[^\r\n]*", "****") if sensitive else value
    return F.when(unclosed.isNotNull(), _masked_line(rest)).otherwise(masked)


def _masked_numbers(text: Column) -> Column:
    """`text` with its digit runs masked when it holds 16 or more digits in a row, spaces and
    dashes aside: a card, bank account or identity number in a column not meant for it (shifted
    or swapped columns) stays out of the quarantine, while phone numbers (at most 15 digits in
    E.164), dates and counts stay readable.

    (Not one pattern counting digits between separators: a repeated group recurses in Java's
    regex engine and overflows its stack on a long value; character-class runs do not.)"""
    long_number = F.regexp_replace(text, r"[ \-]", "").rlike(r"[0-9]{16,}")
    return F.when(long_number, _masked_line(text)).otherwise(text)


def _is_blank(text: Column) -> Column:
    """`text` (a string) holds nothing but whitespace, separators, control and format
    characters (`_BLANK`). A value starting with a printable ASCII character is not blank, and
    is told so without the regular expression, which cost 12 s of the 25 s conform of
    1,000,000 accounts (14 text columns) on 2 cores."""
    first = F.ascii(text)
    return F.when(first.between(33, 126), F.lit(False)).otherwise(text.rlike(_BLANK))


def _not_utf8(text: Column) -> Column:
    """`text` holds bytes that are not UTF-8: as read (`is_valid_utf8`), or replaced on the way
    in (U+FFFD, what a CSV decoder writes for them)."""
    return text.contains("\ufffd") | ~F.is_valid_utf8(text)


def _epoch_to_timestamp(value: Column) -> Column:
    """An integer epoch to a timestamp, its unit read from its magnitude.

    Parquet files written by pandas hold nanosecond timestamps, which Spark reads as longs
    (`spark.sql.legacy.parquet.nanosAsLong`); integers in other units are accepted the same way.
    """

    def beyond(limit: int) -> Column:
        # Not abs(value) >= limit: abs of the smallest long overflows (and fails the query).
        return (value >= F.lit(limit)) | (value <= F.lit(-limit))

    return (
        F.when(beyond(10**17), F.timestamp_micros(F.floor(value / 1000)))
        .when(beyond(10**14), F.timestamp_micros(value))
        .when(beyond(10**11), F.timestamp_millis(value))
        .otherwise(F.timestamp_seconds(value))
    )


def _typed(source: Column, given: T.DataType, wanted: T.DataType) -> Column:
    if given == wanted:
        return source
    if isinstance(wanted, T.TimestampType) and isinstance(given, T.IntegralType):
        return _epoch_to_timestamp(source)
    if isinstance(wanted, T.IntegralType) and isinstance(given, T.FractionalType):
        # A cast truncates 2.5 to 2 silently; only whole numbers are counts (NaN is not).
        return F.when(source % F.lit(1) == F.lit(0), source.try_cast(wanted))
    return source.try_cast(wanted)


def _require_castable(raw: DataFrame, col: ColumnSpec, path: Path | Location) -> None:
    """Raise `InputError` when column `col` of `raw` has a type Spark cannot convert to the
    contract's (an array or a boolean for a timestamp, a date for a count)."""
    given = raw.schema[col.name].dataType
    try:
        raw.select(_typed(_col(col.name), given, col.type))
    except AnalysisException as error:
        raise InputError(
            f"{path}: column {col.name!r} holds {given.simpleString()}, which cannot be read as "
            f"{col.type.simpleString()}; write it as {col.type.simpleString()} or as text"
        ) from error


@dataclass(frozen=True)
class Conformed:
    """`_conform`'s result: `frame` holds the contract columns in contract types, `_reasons`
    (the problems) and the columns as read (under internal names, `raw`); `record` builds the
    masked record from those, and `order` is a sort key over them (the values as read, as text:
    the duplicate kept is the one whose key sorts first, so the choice depends on the data
    alone). The record is built only for the rows quarantined in the end (`with_record`):
    masking every value of every row was half the cost of reading the inputs (measured at
    300,000 accounts: 196 s with, 101 s without)."""

    frame: DataFrame
    record: Column
    order: Column
    raw: tuple[str, ...]


def with_record(flagged: DataFrame, conformed: Conformed) -> DataFrame:
    """`flagged` with the masked record of each row that has a reason (null for accepted rows)
    and without the columns as read."""
    quarantined = F.size(F.col(REASONS)) > 0
    return flagged.withColumn(RECORD, F.when(quarantined, conformed.record)).drop(*conformed.raw)


def _conform(raw: DataFrame, spec: DatasetSpec, path: Path | Location) -> Conformed:
    """Contract columns in contract types and `_reasons`, with the columns as read kept for
    the masked record of the rows quarantined (see `Conformed`)."""
    internal = (CORRUPT, UNCLOSED)
    present = [name for name in raw.columns if name not in internal]
    kept = {name: f"_read_{index}" for index, name in enumerate(present)}
    _require_contract_columns(raw, spec, path)
    sensitive = {col.name for col in spec.columns if col.sensitive}
    unclosed = F.col(UNCLOSED) if UNCLOSED in raw.columns else None
    record = F.to_json(
        F.struct(
            *[
                _record_field(
                    F.col(kept[name]), raw.schema[name].dataType, name in sensitive, unclosed
                ).alias(name)
                for name in present
            ]
        )
    )
    order = F.struct(*[F.col(kept[name]).cast("string") for name in present])
    problems: list[Column] = []
    if CORRUPT in raw.columns:
        # A line that does not parse is kept whole, as the one field of its record.
        line = F.to_json(F.struct(_masked_line(F.col(CORRUPT)).alias(CORRUPT)))
        record = F.when(F.col(CORRUPT).isNotNull(), line).otherwise(record)
    selected: list[Column] = []
    texts: list[str] = []  # the text columns, checked for UTF-8 below
    for col in spec.columns:
        if col.name not in present:
            selected.append(F.lit(None).cast(col.type).alias(col.name))
            continue
        source = _col(col.name)
        given = raw.schema[col.name].dataType
        if given != col.type:
            _require_castable(raw, col, path)
        value = _typed(source, given, col.type)
        if isinstance(col.type, T.StringType):
            value = F.when(~_is_blank(value), value)
            texts.append(col.name)
        else:
            present_value = source.isNotNull() & ~_is_blank(source.cast("string"))
            problems.append(
                F.when(
                    present_value & value.isNull(),
                    F.concat(
                        F.lit(f"{col.name}: not a valid {col.type.simpleString()}: "),
                        _shown(source),
                    ),
                )
            )
        if isinstance(col.type, T.TimestampType):
            problems.append(
                F.when(
                    ~F.year(value).between(_FIRST_YEAR, _LAST_YEAR),
                    F.concat(
                        F.lit(f"{col.name}: outside the years {_FIRST_YEAR} to {_LAST_YEAR}: "),
                        _shown(source),
                    ),
                )
            )
        if col.required:
            problems.append(F.when(value.isNull(), F.lit(f"{col.name}: missing")))
        if col.allowed:
            value = F.trim(value)
            problems.append(
                F.when(
                    value.isNotNull() & ~value.isin(*col.allowed),
                    F.concat(
                        F.lit(f"{col.name}: not one of {', '.join(col.allowed)}: "), _shown(value)
                    ),
                )
            )
        if col.non_negative:
            problems.append(F.when(value < 0, F.lit(f"{col.name}: negative")))
        selected.append(value.alias(col.name))
    reasons = F.array_compact(F.array(*problems))
    if UNCLOSED in raw.columns:
        reasons = F.when(F.col(UNCLOSED).isNotNull(), F.array(F.col(UNCLOSED))).otherwise(reasons)
    if CORRUPT in raw.columns:
        # A line that does not parse has no trustworthy fields: its one reason is the line (the
        # log names a never-closed quote that ran into it).
        reasons = F.when(
            F.col(CORRUPT).isNotNull(), F.array(F.lit("row: malformed CSV line"))
        ).otherwise(reasons)
    internal_present = [name for name in internal if name in raw.columns]
    frame = raw.select(
        *selected,
        reasons.alias(REASONS),
        *[_col(name).alias(kept[name]) for name in present],
        *internal_present,
    )
    return Conformed(
        _with_utf8_reasons(frame, texts, internal_present),
        record,
        order,
        (*kept.values(), *internal_present),
    )


def _with_utf8_reasons(
    frame: DataFrame, texts: Sequence[str], internal: Sequence[str]
) -> DataFrame:
    """`frame` with a reason first for each of its `texts` columns holding bytes that are not
    UTF-8 (`_not_utf8`), but not on a CSV line that did not parse (its one reason is the line).

    The row's text values are checked joined, once, and each value only in a row that fails:
    checking every value cost as much as the rest of the conform (1,000,000 accounts, 14 text
    columns, 2 cores). The row's check is a column of its own, computed in a projection after
    the values': written in the same expression as the per-value checks, its copies made the
    generated code too large to compile (8 times slower)."""
    if not texts:
        return frame
    flagged = frame.withColumn(
        _TEXT_NOT_UTF8, _not_utf8(F.concat_ws(_TEXT_SEPARATOR, *[_col(t) for t in texts]))
    )
    found = F.array_compact(
        F.array(
            *[
                F.when(
                    _not_utf8(_col(name)),
                    F.lit(f"{name}: not valid UTF-8 text (bytes that are not UTF-8)"),
                )
                for name in texts
            ]
        )
    )
    applies = F.col(_TEXT_NOT_UTF8)
    if CORRUPT in internal:
        applies = applies & F.col(CORRUPT).isNull()
    if UNCLOSED in internal:
        applies = applies & F.col(UNCLOSED).isNull()
    return flagged.withColumn(
        REASONS, F.when(applies, F.concat(found, F.col(REASONS))).otherwise(F.col(REASONS))
    ).drop(_TEXT_NOT_UTF8)


def _add_reason(flagged: DataFrame, condition: Column, reason: str) -> DataFrame:
    return flagged.withColumn(
        REASONS,
        F.when(condition, F.array_append(F.col(REASONS), F.lit(reason))).otherwise(F.col(REASONS)),
    )


def flag_duplicate_accounts(flagged: DataFrame, order: Column) -> DataFrame:
    """Quarantine all but one row of each duplicated account id.

    The row kept is the one whose `order` (`Conformed.order`: its values as read) sorts first,
    so the choice depends on the data alone, not on partitioning or file order.
    """
    clean = F.size(F.col(REASONS)) == 0
    by_id = Window.partitionBy(c.ACCOUNT_ID, clean).orderBy(order)
    ranked = flagged.withColumn("_rank", F.row_number().over(by_id))
    return _add_reason(
        ranked, clean & (F.col("_rank") > 1), "account_id: duplicate of another accounts row"
    ).drop("_rank")


# `flag_orphans` broadcasts a dataset's unknown account ids when there are at most this many
# (`inputs.broadcast_unknown_ids` in the config).
BROADCAST_UNKNOWN_IDS = 100_000
_ORPHAN = "account_id: not an accepted account (absent from accounts or quarantined)"


@dataclass(frozen=True)
class Orphans:
    """`flag_orphans`' result: the flagged rows, and the frame of unknown ids it persisted
    (`None` when it joined the rows instead) for `LoadedInputs.release`."""

    flagged: DataFrame
    unknown: DataFrame | None


def flag_orphans(
    flagged: DataFrame,
    accepted_accounts: DataFrame,
    *,
    broadcast_ids: int = BROADCAST_UNKNOWN_IDS,
) -> Orphans:
    """Quarantine rows whose account_id is not an accepted account.

    The ids are compared, not the rows: the distinct ids of `flagged` (one narrow column)
    against the accepted ones. When at most `broadcast_ids` of them are unknown (orphans are
    bad rows: few), those are broadcast and the rows flagged as they are scanned; otherwise
    the rows are joined with the accepted ids, a shuffle of every row with its columns as read
    (reading 1,500,000 logistics rows on 2 cores took 148 s so, 43 s with the ids broadcast).
    A CSV file is parsed twice then (once for its ids)."""
    unknown = (
        flagged.select(c.ACCOUNT_ID)
        .distinct()
        .join(accepted_accounts.select(c.ACCOUNT_ID), on=c.ACCOUNT_ID, how="left_anti")
        .select(c.ACCOUNT_ID, F.lit(True).alias("_unknown"))
        .persist()
    )
    clean = F.size(F.col(REASONS)) == 0
    if unknown.count() <= broadcast_ids:
        joined = flagged.join(F.broadcast(unknown), on=c.ACCOUNT_ID, how="left")
        orphan = clean & F.col("_unknown").isNotNull()
        return Orphans(_add_reason(joined, orphan, _ORPHAN).drop("_unknown"), unknown)
    unknown.unpersist()
    known = accepted_accounts.select(c.ACCOUNT_ID, F.lit(True).alias("_known"))
    joined = flagged.join(known, on=c.ACCOUNT_ID, how="left")
    orphan = clean & F.col("_known").isNull()
    return Orphans(_add_reason(joined, orphan, _ORPHAN).drop("_known"), None)


def _split(flagged: DataFrame, spec: DatasetSpec, run_id: str) -> tuple[DataFrame, DataFrame]:
    accepted = flagged.where(F.size(F.col(REASONS)) == 0).select(
        *[col.name for col in spec.columns]
    )
    quarantined = flagged.where(F.size(F.col(REASONS)) > 0).select(
        F.lit(spec.name).alias(c.DATASET),
        F.col(RECORD).alias(c.RECORD),
        F.array_join(F.col(REASONS), "; ").alias(c.REASON),
        F.lit(run_id).alias(c.RUN_ID),
    )
    return accepted, quarantined


def _count(flagged: DataFrame) -> DatasetCounts:
    row = flagged.agg(
        F.count(F.lit(1)).alias("read"),
        F.sum(F.when(F.size(F.col(REASONS)) == 0, 1).otherwise(0)).alias("accepted"),
    ).first()
    assert row is not None
    read, accepted = int(row["read"]), int(row["accepted"] or 0)
    return DatasetCounts(read=read, accepted=accepted, quarantined=read - accepted)


def empty_dataset(spark: SparkSession, name: str) -> DataFrame:
    """An empty frame with the contract's columns of dataset `name`."""
    return spark.createDataFrame([], CONTRACT[name].schema)


def _rows_of(frame: DataFrame, only: Reread) -> DataFrame:
    """The rows of `frame` (as read) that `only` reads again: those of its accounts, and
    those without an account id (quarantined, every run)."""
    ids = only.accounts.select(
        F.col(c.ACCOUNT_ID).cast("string").alias(_READ_AGAIN_ID), F.lit(True).alias(_READ_AGAIN)
    )
    account = F.col(c.ACCOUNT_ID).cast("string")
    marked = frame.join(
        F.broadcast(ids) if only.broadcast else ids,
        on=account == F.col(_READ_AGAIN_ID),
        how="left",
    )
    return marked.where(F.col(_READ_AGAIN).isNotNull() | account.isNull()).drop(
        _READ_AGAIN_ID, _READ_AGAIN
    )


_READ_AGAIN_ID, _READ_AGAIN = "_read_again_id", "_read_again"


@dataclass(frozen=True)
class _Checked:
    """One dataset as `_check_dataset` read and checked it."""

    accepted: DataFrame
    rejected: DataFrame
    counts: DatasetCounts
    flagged_ids: DataFrame | None  # `(account_id)` with a quarantined row (not for signals)
    persisted: tuple[DataFrame, ...]


def _check_dataset(
    name: str,
    found: RawDataset,
    *,
    run_id: str,
    known: DataFrame | None,
    broadcast_ids: int,
    only: Reread | None,
) -> _Checked:
    """Conform, flag and count one dataset of `load_inputs`; `known` is the accepted account
    ids its rows are checked against (None for accounts, which come first)."""
    spec = CONTRACT[name]
    path, fmt = found.path, found.fmt
    read_again = only is not None and name not in only.whole
    frame = _rows_of(found.frame, only) if read_again and only is not None else found.frame
    conformed = _conform(frame, spec, path)
    persisted: list[DataFrame] = []
    if known is None:
        flagged = flag_duplicate_accounts(conformed.frame, conformed.order)
    else:
        with _reading(path, fmt):  # the first action on the dataset reads its ids
            orphans = flag_orphans(conformed.frame, known, broadcast_ids=broadcast_ids)
        flagged = orphans.flagged
        if orphans.unknown is not None:
            persisted.append(orphans.unknown)
    flagged = with_record(flagged, conformed).persist()
    persisted.append(flagged)
    with _reading(path, fmt):
        counts = _count(flagged)
        if read_again:
            read = found.frame.count()
            counts = DatasetCounts(
                read=read, accepted=read - counts.quarantined, quarantined=counts.quarantined
            )
    accepted, rejected = _split(flagged, spec, run_id)
    flagged_ids = None
    if name != c.ENFORCEMENT_SIGNALS:
        flagged_ids = flagged.where(
            (F.size(F.col(REASONS)) > 0) & F.col(c.ACCOUNT_ID).isNotNull()
        ).select(c.ACCOUNT_ID)
    logger.info(
        "dataset %s (%s, %s): %d rows read, %d accepted, %d quarantined%s",
        name,
        fmt,
        path,
        counts.read,
        counts.accepted,
        counts.quarantined,
        " (the rows of new, changed and once quarantined accounts checked)" if read_again else "",
    )
    return _Checked(accepted, rejected, counts, flagged_ids, tuple(persisted))


def load_inputs(
    spark: SparkSession,
    in_dir: Path | Location | str | RawInputs,
    *,
    run_id: str,
    broadcast_ids: int = BROADCAST_UNKNOWN_IDS,
    only: Reread | None = None,
    workers: int = 1,
) -> LoadedInputs:
    """Read every dataset present in `in_dir` (a local folder or a URI, or what `open_inputs`
    opened); accounts first (the others refer to it), then the others `workers` at a time
    (`jobs.concurrency.run_together`: the same result as one by one, and with several
    unreadable files the first in contract order is the one raised).

    The flagged frames are persisted (each is read once and used three times: counts, accepted,
    quarantined); `LoadedInputs.release` unpersists them when the run is over. `broadcast_ids`:
    see `flag_orphans` (`inputs.broadcast_unknown_ids` in the config).

    With `only` (an incremental run, `Reread`), the datasets but `only.whole` are checked for
    the rows it names only: the quarantine is the same as a whole read's (a row's reasons
    depend on its own values and on the other rows of its account id), and the counts are
    the rows read, of which those not read again are accepted.
    """
    raw = in_dir if isinstance(in_dir, RawInputs) else open_inputs(spark, in_dir)
    accounts_found = raw.datasets.get(c.ACCOUNTS)
    assert accounts_found is not None  # accounts are required (`open_inputs`)
    accounts = _check_dataset(
        c.ACCOUNTS,
        accounts_found,
        run_id=run_id,
        known=None,
        broadcast_ids=broadcast_ids,
        only=only,
    )
    account_ids = accounts.accepted.select(c.ACCOUNT_ID)
    if only is not None:
        account_ids = account_ids.unionByName(
            only.kept.select(c.ACCOUNT_ID).join(
                F.broadcast(only.accounts) if only.broadcast else only.accounts,
                on=c.ACCOUNT_ID,
                how="left_anti",
            )
        )
    present = [name for name in c.INPUT_DATASETS if name != c.ACCOUNTS and name in raw.datasets]

    def check(name: str) -> _Checked:
        read_again = only is not None and name not in only.whole
        # The rows read again belong to accounts read again: those accepted are all the
        # accounts they can belong to.
        known = accounts.accepted if read_again else account_ids
        return _check_dataset(
            name,
            raw.datasets[name],
            run_id=run_id,
            known=known,
            broadcast_ids=broadcast_ids,
            only=only,
        )

    checked = dict(
        zip(
            present,
            run_together([(name, partial(check, name)) for name in present], workers=workers),
            strict=True,
        )
    )
    checked[c.ACCOUNTS] = accounts
    accepted: dict[str, DataFrame] = {}
    counts: dict[str, DatasetCounts] = {}
    sources: dict[str, str] = {}
    in_order: list[_Checked] = []  # in contract order, whatever order they were checked in
    for name in c.INPUT_DATASETS:
        part = checked.get(name)
        if part is None:
            accepted[name] = empty_dataset(spark, name)
            counts[name] = DatasetCounts(0, 0, 0)
            continue
        accepted[name], counts[name] = part.accepted, part.counts
        sources[name] = str(raw.datasets[name].path)
        in_order.append(part)
    quarantine = reduce(DataFrame.unionByName, [part.rejected for part in in_order])
    flagged_ids = reduce(
        DataFrame.unionByName,
        [part.flagged_ids for part in in_order if part.flagged_ids is not None],
    )
    persisted = tuple(frame for part in in_order for frame in part.persisted)
    return LoadedInputs(
        accepted=accepted,
        quarantine=quarantine,
        counts=counts,
        sources=sources,
        account_ids=account_ids,
        quarantined_accounts=flagged_ids.groupBy(c.ACCOUNT_ID).agg(
            F.count(F.lit(1)).cast("int").alias(QUARANTINED_ROWS)
        ),
        persisted=persisted,
    )
