"""Great Expectations Data Docs of a real run (`first_run`): written beside its quality results,
logged to its MLflow run, and free of account ids and sensitive numbers."""

from __future__ import annotations

import filecmp
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from jobs.tracking import DATA_DOCS_DIR, find_job_run
from tests.conftest import E2E_RUN_ID

# Runs of digits this long are card, bank or identity numbers; shorter ones are too common.
MIN_DIGITS = 12


@pytest.fixture(scope="module")
def site(first_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    out, _ = first_run
    return out / "_quality" / E2E_RUN_ID / "data_docs"


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_a_run_writes_data_docs_of_both_suites(
    first_run: tuple[Path, subprocess.CompletedProcess[str]], site: Path
) -> None:
    _, result = first_run
    assert (site / "index.html").is_file()
    assert "Data Docs not written" not in result.stderr
    # validations/SUITE/FRAME/RUN_NAME/RUN_TIME/BATCH.html: one page per validated frame.
    pages = [p.relative_to(site / "validations").parts for p in site.glob("validations/**/*.html")]
    assert sorted(page[:3] for page in pages) == [
        ("inputs", "accounts", E2E_RUN_ID),
        ("outputs", "entities", E2E_RUN_ID),
        ("outputs", "entity_membership", E2E_RUN_ID),
        ("outputs", "entity_size_problems", E2E_RUN_ID),
        ("outputs", "match_edges", E2E_RUN_ID),
        ("outputs", "membership_coverage_problems", E2E_RUN_ID),
        ("outputs", "unknown_edge_endpoints", E2E_RUN_ID),
    ]
    index = (site / "index.html").read_text(encoding="utf-8")
    for page in site.glob("validations/**/*.html"):
        assert str(page.relative_to(site)) in index  # the index links every validation


def test_data_docs_are_artifacts_of_the_runs_mlflow_run(
    first_run: tuple[Path, subprocess.CompletedProcess[str]], site: Path, tmp_path: Path
) -> None:
    out, _ = first_run
    client, run = find_job_run(out / "_mlflow", E2E_RUN_ID)
    logged = {entry.path for entry in client.list_artifacts(run.info.run_id, DATA_DOCS_DIR)}
    assert f"{DATA_DOCS_DIR}/index.html" in logged
    assert f"{DATA_DOCS_DIR}/validations" in logged
    copy = Path(client.download_artifacts(run.info.run_id, DATA_DOCS_DIR, str(tmp_path)))
    assert _files(copy) == _files(site)
    for name in _files(site):
        assert filecmp.cmp(copy / name, site / name, shallow=False), name


def test_data_docs_hold_no_account_id_or_sensitive_number(
    generated: tuple[Path, Path], site: Path
) -> None:
    in_dir, _ = generated
    accounts = pd.read_parquet(in_dir / "accounts.parquet")
    payments = pd.read_parquet(in_dir / "payment_instruments.parquet")
    account_ids = {str(i).strip() for i in accounts["account_id"].dropna()} - {""}
    numbers = {
        digits
        for raw in [*accounts["id_number"].dropna(), *payments["instrument_id"].dropna()]
        if len(digits := re.sub(r"\D", "", str(raw))) >= MIN_DIGITS
    }
    assert len(account_ids) > 1000 and len(numbers) > 1000  # the search has something to find
    text = "\n".join(
        path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(site.rglob("*"))
        if path.suffix in (".html", ".css", ".js", ".json")
    )
    bare = re.sub(r"\D", "", text)  # numbers split by markup or separators too
    assert [i for i in account_ids if i in text] == []
    assert [n for n in numbers if n in text or n in bare] == []
