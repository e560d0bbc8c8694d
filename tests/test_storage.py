"""Inputs and outputs given as URIs (object storage): the job takes any Hadoop filesystem URI;
`file://` exercises the same route here (Hadoop FileSystem calls, Spark and Delta on URIs, a
local copy of a CSV file for the Python checks), without an object store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from jobs.inputs import load_inputs, locate_dataset
from jobs.storage import Location, Storage
from tests.jobrun import resolve


def test_location_parses_local_paths_and_uris(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    local = Location.parse("out")
    assert local.is_local and local.local_path == tmp_path / "out"
    assert str(local / "runs") == str(tmp_path / "out" / "runs")
    uri = Location.parse("s3a://bucket/er/out/")
    assert not uri.is_local
    assert str(uri) == "s3a://bucket/er/out"
    assert str(uri / "runs" / "_delta_log") == "s3a://bucket/er/out/runs/_delta_log"
    assert (uri / "accounts.csv").name == "accounts.csv"
    assert (uri / "accounts.csv").suffix == ".csv"
    assert Location.parse(uri) is uri
    with pytest.raises(ValueError, match="not a local path"):
        _ = uri.local_path


def test_storage_answers_through_hadoop_for_uris(spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file.csv").write_text("account_id\nA1\n", encoding="utf-8")
    storage = Storage(spark)
    base = Location.parse(tmp_path.as_uri())
    assert not base.is_local
    assert storage.is_dir(base / "folder") and not storage.is_file(base / "folder")
    assert storage.is_file(base / "file.csv") and not storage.is_dir(base / "file.csv")
    assert not storage.exists(base / "missing")
    with storage.local_copy(base / "file.csv") as copy:
        assert copy != tmp_path / "file.csv"
        assert copy.read_text(encoding="utf-8") == "account_id\nA1\n"
    assert not copy.exists(), "the local copy outlives its use"


def test_inputs_read_from_a_uri_as_from_a_path(spark: SparkSession, tmp_path: Path) -> None:
    """A CSV dataset (header and quoting checked on a local copy) and a parquet dataset, read
    through a file:// URI, give what the same folder gives as a path; errors name the URI."""
    (tmp_path / "accounts.csv").write_text(
        'account_id,shop_name,phone\nA1,"Shop, one",13800138000\nA2,Shop two,\n,no id,1\n',
        encoding="utf-8",
    )
    payments = {"account_id": ["A1"], "instrument_type": ["card"], "instrument_id": ["4111"]}
    pd.DataFrame(payments).to_parquet(tmp_path / "payment_instruments.parquet", index=False)
    by_uri = load_inputs(spark, tmp_path.as_uri(), run_id="u")
    by_path = load_inputs(spark, tmp_path, run_id="p")
    for name in ("accounts", "payment_instruments"):
        assert by_uri.counts[name] == by_path.counts[name]
        assert sorted(map(tuple, by_uri.accepted[name].collect())) == sorted(
            map(tuple, by_path.accepted[name].collect())
        )
    assert by_uri.sources["accounts"] == f"{tmp_path.as_uri()}/accounts.csv"
    located = locate_dataset(tmp_path.as_uri(), "accounts", storage=Storage(spark))
    assert located is not None and located[1] == "csv"

    (tmp_path / "accounts.csv").write_text("account_id,phone,PHONE\nA1,1,2\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"file:///.*accounts\.csv: column 'PHONE' appears twice"):
        load_inputs(spark, tmp_path.as_uri(), run_id="dup")


def test_output_uri_without_mlflow_location_exits_2(generated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    in_dir, _ = generated
    result = resolve(in_dir, f"s3a://no-such-bucket/out-{tmp_path.name}")
    assert result.returncode == 2
    assert "set tracking.uri (an MLflow server) or tracking.dir" in result.stderr
    assert "s3a://no-such-bucket/out-" in result.stderr.splitlines()[-1]
