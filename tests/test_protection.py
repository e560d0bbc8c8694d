"""Sensitive numbers are protected.

End to end: the real job on a small generated input (with malformed rows, so that rows holding
numbers reach the quarantine); then every output Delta table (every column cast to text, and
every data file and commit of every version), the job's log and every file beside the tables
(MLflow's store and artifacts, quality results, charts) are searched for every identity, card
and bank-account number of the input, as typed and as bare digits: none may appear, and a
card-like number appears only masked to its last four digits. And the public demo key is
refused outside Spark's local mode.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from features import columns as c
from jobs.config import HashingConfig
from jobs.hash_key import DEMO_KEY, is_local_master, load_hash_key
from resolution.errors import ConfigError
from tests.jobrun import read_table, resolve, run_module

ACCOUNTS = 300
PAYMENT_NUMBER_TYPES = ("card", "bank_account")
# A bare run of digits long enough to be a card or account number; shorter runs (dates, counts,
# phone numbers, ids) are too common to search for.
MIN_BARE_DIGITS = 12
# A card-like number: 13 to 19 digits (spaces or dashes between) passing the Luhn check,
# first digit 2 to 6 (the card networks' ranges; millisecond times start with 1 until 2033),
# and not part of a longer token: a word (hashes and ids are hex or alphanumeric), the
# fraction of a decimal number, a phone number in E.164 (`+86...`), a path.
CARD_LIKE = re.compile(r"(?<![0-9A-Za-z+.\-_/])[2-6](?:[ \-]{0,2}[0-9]){12,18}(?![0-9A-Za-z.])")
MASKED = re.compile(r"^\*{4}[0-9A-Za-z]{0,4}$")


def _luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(re.sub(r"\D", "", number))]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


@pytest.fixture(scope="module")
def protected_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, str]:
    """(IN_DIR, OUT_DIR, the job's stdout and stderr) of one run with the small-data config."""
    base = tmp_path_factory.mktemp("protection")
    in_dir, out = base / "in", base / "out"
    generated = run_module(
        "-m",
        "jobs.generate_synthetic",
        "--output",
        in_dir,
        "--accounts",
        str(ACCOUNTS),
        "--seed",
        "23",
        "--malformed-rate",
        "0.05",
    )
    assert generated.returncode == 0, generated.stderr[-3000:]
    result = resolve(in_dir, out, "--run-id", "protect-1")
    assert result.returncode == 0, result.stderr[-5000:]
    return in_dir, out, result.stdout + "\n" + result.stderr


def sensitive_numbers(in_dir: Path) -> dict[str, str]:
    """Every identity, card and bank-account number of the input, as typed -> where it is."""
    accounts = pd.read_parquet(in_dir / "accounts.parquet", columns=[c.ID_NUMBER])
    payments = pd.read_parquet(
        in_dir / "payment_instruments.parquet", columns=[c.INSTRUMENT_TYPE, c.INSTRUMENT_ID]
    )
    numbers = {value: "accounts.id_number" for value in accounts[c.ID_NUMBER].dropna()}
    paid = payments[payments[c.INSTRUMENT_TYPE].isin(PAYMENT_NUMBER_TYPES)]
    for kind, value in zip(paid[c.INSTRUMENT_TYPE], paid[c.INSTRUMENT_ID], strict=True):
        if value is not None:
            numbers[value] = f"payment_instruments.instrument_id ({kind})"
    return numbers


def searched_forms(number: str) -> set[str]:
    """`number` as typed, and half-width (`１１０...` is `110...`) without spaces and dashes, and
    as bare digits (when long enough not to turn up by chance)."""
    half_width = unicodedata.normalize("NFKC", number)
    forms = {number.strip(), re.sub(r"[\s\-]", "", half_width).upper()}
    digits = re.sub(r"[^0-9]", "", half_width)
    if len(digits) >= MIN_BARE_DIGITS:
        forms.add(digits)
    return {form for form in forms if len(form) >= 8}


def _delta_tables(out: Path) -> list[Path]:
    return sorted(log.parent for log in out.glob("*/_delta_log"))


def _table_texts(spark: SparkSession, table: Path) -> Iterator[tuple[str, str]]:
    """(where, text) of a Delta table: its current rows with every column cast to text, every
    data file of every version, and its commits (which hold column statistics)."""
    current = spark.read.format("delta").load(str(table))
    rows = current.select(*[F.col(name).cast("string") for name in current.columns]).collect()
    for index, column in enumerate(current.columns):
        yield f"{table.name}.{column}", "\n".join(str(row[index]) for row in rows)
    for data_file in sorted(table.rglob("*.parquet")):
        if "_delta_log" in data_file.parts:
            continue
        rows = pq.read_table(data_file).to_pylist()
        yield str(data_file), json.dumps(rows, default=str, ensure_ascii=False)
    for commit in sorted((table / "_delta_log").glob("*.json")):
        yield str(commit), commit.read_text(encoding="utf-8")


def _file_texts(out: Path, tables: list[Path]) -> Iterator[tuple[str, str]]:
    """(path, text) of every other file under OUT_DIR: MLflow's store and artifacts, quality
    results, charts, models; binary files as the text runs they hold."""
    for path in sorted(out.rglob("*")):
        if path.is_file() and not any(table in path.parents for table in tables):
            yield str(path), path.read_bytes().decode("utf-8", errors="replace")


def _leaks(texts: Iterator[tuple[str, str]], numbers: dict[str, str]) -> list[str]:
    forms = {form: number for number in numbers for form in searched_forms(number)}
    found = []
    for where, text in texts:
        for form, number in forms.items():
            if form in text:
                found.append(f"{where}: {numbers[number]} {number!r} (as {form!r})")
        for match in CARD_LIKE.finditer(text):
            if _luhn_valid(match.group()):
                found.append(f"{where}: card-like number {match.group()!r} not masked")
    return found


def test_no_raw_identity_card_or_bank_number_in_any_output(
    spark: SparkSession, protected_run: tuple[Path, Path, str]
) -> None:
    in_dir, out, log = protected_run
    numbers = sensitive_numbers(in_dir)
    assert len(numbers) > ACCOUNTS  # identity numbers and cards: the search has something
    tables = _delta_tables(out)
    assert {"entity_membership", "match_edges", "hub_values", "quarantine"} <= {
        table.name for table in tables
    }
    assert (out / "_mlflow").is_dir()

    leaks = _leaks(
        iter(
            [
                *(item for table in tables for item in _table_texts(spark, table)),
                ("the job's log", log),
                *_file_texts(out, tables),
            ]
        ),
        numbers,
    )
    assert not leaks, "\n".join(leaks[:50])


def test_quarantined_numbers_are_masked_to_their_last_four(
    protected_run: tuple[Path, Path, str],
) -> None:
    """Rows rejected with their numbers (orphan or mistyped payments, duplicate accounts) keep
    them in the quarantine only as `****` and the last four."""
    in_dir, out, _ = protected_run
    instruments = pd.read_parquet(in_dir / "payment_instruments.parquet")[c.INSTRUMENT_ID]
    typed = [*sensitive_numbers(in_dir), *instruments.dropna()]  # wallet logins are masked too
    last_four = {re.sub(r"[\s\-]", "", value)[-4:] for value in typed}
    quarantine = read_table(out, "quarantine")
    masked = []
    for record in quarantine[c.RECORD]:
        fields = json.loads(record)
        for column in (c.ID_NUMBER, c.INSTRUMENT_ID):
            if fields.get(column) is not None:
                assert MASKED.match(fields[column]), (column, fields[column])
                masked.append(fields[column])
    assert masked, "no quarantined row held a number: the check checked nothing"
    assert {value[4:] for value in masked if len(value) == 8} <= last_four


# The demo key outside local mode ------------------------------------------------------------


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> HashingConfig:
    monkeypatch.delenv("SELLER_ER_HASH_KEY", raising=False)
    return HashingConfig()


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4,3]", " local[*] "])
def test_demo_key_is_allowed_in_local_mode_with_a_warning(
    no_key: HashingConfig, master: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobs.hash_key"):
        assert load_hash_key(no_key, master=master) == DEMO_KEY
    assert "public demo key" in caplog.text


@pytest.mark.parametrize(
    "master",
    [
        "yarn",
        "spark://10.0.0.5:7077",
        "k8s://https://kubernetes.default:443",
        "local-cluster[2,1,1024]",
        "mesos://zk://host:2181/mesos",
        "locally",
    ],
)
def test_demo_key_is_refused_outside_local_mode(no_key: HashingConfig, master: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_hash_key(no_key, master=master)
    message = str(refused.value)
    assert "$SELLER_ER_HASH_KEY" in message
    assert "hashing.key_file" in message
    assert repr(master) in message
    assert "\n" not in message  # the job prints it as its one error line (exit status 2)


def test_demo_key_is_refused_outside_local_mode_even_when_set_as_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SELLER_ER_HASH_KEY", DEMO_KEY.decode())
    with pytest.raises(ConfigError, match=r"held by \$SELLER_ER_HASH_KEY"):
        load_hash_key(HashingConfig(), master="yarn")
    monkeypatch.delenv("SELLER_ER_HASH_KEY")
    key_file = tmp_path / "key"
    key_file.write_bytes(DEMO_KEY + b"\n")
    with pytest.raises(ConfigError, match="held by hashing.key_file"):
        load_hash_key(HashingConfig(key_file=str(key_file)), master="spark://h:7077")


def test_own_key_is_used_on_a_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SELLER_ER_HASH_KEY", "a real secret")
    assert load_hash_key(HashingConfig(), master="yarn") == b"a real secret"
    monkeypatch.delenv("SELLER_ER_HASH_KEY")
    key_file = tmp_path / "key"
    key_file.write_bytes(b"file secret\n")
    config = HashingConfig(key_file=str(key_file), allow_demo_key=False)
    assert load_hash_key(config, master="k8s://https://k:443") == b"file secret"


def test_no_key_and_demo_key_not_allowed_is_refused_everywhere(no_key: HashingConfig) -> None:
    config = HashingConfig(allow_demo_key=False)
    for master in ("local[*]", "yarn"):
        with pytest.raises(ConfigError, match="hashing.allow_demo_key is false"):
            load_hash_key(config, master=master)


def test_local_master_urls() -> None:
    assert [is_local_master(m) for m in ("local", "local[8]", "local[*, 4]")] == [True] * 3
    assert [is_local_master(m) for m in ("yarn", "local-cluster[1,1,512]", "")] == [False] * 3
