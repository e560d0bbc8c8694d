"""The notebooks under notebooks/ run end to end, without Spark, on a real job run's outputs.

Each notebook runs in a fresh kernel of this venv (ipykernel's wheel installs the `python3`
kernelspec into the venv, so no `ipykernel install` step is needed) with notebooks/ as its
working directory and SELLER_ER_OUT_DIR pointing at the shared `first_run` output.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import E2E_RUN_ID
from tests.jobrun import ROOT, read_table

NOTEBOOKS = ROOT / "notebooks"
EXPLORE = "explore_entities.ipynb"
EXPLAIN = "explain_match.ipynb"
OUT_DIR_LINE = 'OUT_DIR = Path(os.environ.get("SELLER_ER_OUT_DIR", "../demo/out"))'
# Prints the kernel's interpreter, appended to a run's copy of a notebook (never to the file).
PRINT_PREFIX = 'import sys\nprint("kernel prefix", sys.prefix)'


def execute(
    name: str, out_dir: Path, scratch: Path, *, parameters: str | None = None
) -> nbformat.NotebookNode:
    """The notebook `name` executed on `out_dir`; `parameters` replaces its parameters cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if parameters is not None:
        (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        cell.source = parameters
    notebook.cells.append(nbformat.v4.new_code_cell(PRINT_PREFIX))
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    with pytest.MonkeyPatch.context() as patch:
        # The venv's kernelspec before any user-wide one; connection files in scratch.
        patch.setenv("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))
        patch.setenv("JUPYTER_RUNTIME_DIR", str(scratch / "runtime"))
        env = dict(os.environ, SELLER_ER_OUT_DIR=str(out_dir), IPYTHONDIR=str(scratch / "ipython"))
        client.execute(env=env)
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[Any]:
    return [output for cell in notebook.cells for output in cell.get("outputs", [])]


def printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in outputs(notebook) if o.output_type == "stream")


def png_count(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(notebook))


def printed_value(notebook: nbformat.NotebookNode, prefix: str) -> str:
    """The rest of the one printed line that starts with `prefix` and a space."""
    (line,) = [x for x in printed(notebook).splitlines() if x.startswith(prefix + " ")]
    return line[len(prefix) + 1 :]


def current_run(out_dir: Path) -> Any:
    """The `runs` row of the fixture's run, the only (so the latest) succeeded one."""
    runs = read_table(out_dir, "runs")
    (row,) = runs[runs.run_id == E2E_RUN_ID].itertuples()
    assert row.status == "succeeded"
    return row


def current_tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    """The tables a reader sees: each at the version the run names in `table_versions`."""
    versions = json.loads(current_run(out_dir).table_versions)
    names = ("entity_membership", "entities", "match_edges", "entity_leads")
    return {name: read_table(out_dir, name, versions[name]) for name in names}


def entity_edges(tables: dict[str, pd.DataFrame], entity_id: str) -> pd.DataFrame:
    membership, edges = tables["entity_membership"], tables["match_edges"]
    inside = membership.account_id[membership.entity_id == entity_id]
    return edges[edges.account_id_l.isin(inside) & edges.account_id_r.isin(inside)]


@pytest.fixture(scope="module")
def out_dir(first_run) -> Path:  # type: ignore[no-untyped-def]
    return first_run[0]


@pytest.fixture(scope="module")
def tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    return current_tables(out_dir)


@pytest.fixture(scope="module")
def prior_weight(out_dir: Path) -> float:
    """The evidence score's starting weight, from the config the run recorded."""
    model = json.loads(current_run(out_dir).config)["resolution"]["model"]
    assert model["kind"] == "evidence"
    return float(model["evidence"]["prior_weight"])


@pytest.fixture(scope="module")
def explored(out_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    return execute(EXPLORE, out_dir, tmp_path_factory.mktemp("explore"))


@pytest.fixture(scope="module")
def explained(out_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    return execute(EXPLAIN, out_dir, tmp_path_factory.mktemp("explain"))


def test_committed_notebooks_are_clean() -> None:
    found = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert {EXPLORE, EXPLAIN} <= set(found)
    for name in found:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert [(c.outputs, c.execution_count) for c in code] == [([], None)] * len(code), name
        assert OUT_DIR_LINE in code[0].source, name


def test_explore_entities_reads_the_current_run_and_draws(
    explored: nbformat.NotebookNode, tables: dict[str, pd.DataFrame]
) -> None:
    assert not [o for o in outputs(explored) if o.output_type == "error"]
    assert printed_value(explored, "kernel prefix") == sys.prefix
    assert printed(explored).startswith(f"current state: run {E2E_RUN_ID}, finished ")
    assert png_count(explored) >= 2  # size distribution, one ring's account graph
    # The ring drawn: the best-ranked lead of 2 to 40 accounts, with its edges.
    entities, leads = tables["entities"], tables["entity_leads"]
    readable = leads[(leads.account_count > 1) & (leads.account_count <= 40)]
    expected = readable.sort_values("lead_rank").entity_id.iloc[0]
    (size,) = entities.account_count[entities.entity_id == expected]
    edge_count = len(entity_edges(tables, expected))
    assert edge_count >= size - 1  # connected
    drawn = f"{expected}: {size} accounts, {edge_count} accepted match edges"
    assert printed_value(explored, "ring") == drawn


def check_waterfall(summary: dict[str, Any], edges: pd.DataFrame, prior_weight: float) -> None:
    """The waterfall's steps are the edge's stored evidence and add up to its match weight."""
    (edge,) = edges[
        (edges.account_id_l == summary["account_id_l"])
        & (edges.account_id_r == summary["account_id_r"])
    ].itertuples()
    stored = sorted((item["attribute"], item["weight"]) for item in edge.evidence)
    drawn = sorted((item["evidence"], item["weight"]) for item in summary["contributions"])
    assert drawn == stored
    assert summary["prior_weight"] == prior_weight
    total = prior_weight + sum(weight for _, weight in stored)
    assert total == pytest.approx(edge.match_weight, abs=1e-9)
    assert summary["waterfall_end"] == pytest.approx(edge.match_weight, abs=1e-9)
    assert summary["match_weight"] == edge.match_weight


def test_explain_match_defaults_to_the_strongest_edge_of_the_largest_entity(
    explained: nbformat.NotebookNode, tables: dict[str, pd.DataFrame], prior_weight: float
) -> None:
    assert not [o for o in outputs(explained) if o.output_type == "error"]
    assert printed_value(explained, "kernel prefix") == sys.prefix
    assert png_count(explained) >= 1  # the waterfall
    summary = json.loads(printed_value(explained, "waterfall"))
    entities = tables["entities"]
    largest = entities.sort_values(["account_count", "entity_id"], ascending=[False, True])
    inside = entity_edges(tables, largest.entity_id.iloc[0])
    strongest = inside.sort_values(
        ["match_weight", "account_id_l", "account_id_r"], ascending=[False, True, True]
    ).iloc[0]
    assert summary["run_id"] == E2E_RUN_ID
    assert (summary["account_id_l"], summary["account_id_r"]) == (
        strongest.account_id_l,
        strongest.account_id_r,
    )
    assert len(summary["contributions"]) >= 2
    check_waterfall(summary, tables["match_edges"], prior_weight)


def test_explain_match_explains_the_chosen_edge(
    out_dir: Path, tables: dict[str, pd.DataFrame], prior_weight: float, tmp_path: Path
) -> None:
    edges = tables["match_edges"]
    weakest = edges.sort_values(["match_weight", "account_id_l", "account_id_r"]).iloc[0]
    # Given in the other order: the notebook finds the edge either way round.
    parameters = f'ACCOUNT_A = "{weakest.account_id_r}"\nACCOUNT_B = "{weakest.account_id_l}"'
    explained = execute(EXPLAIN, out_dir, tmp_path, parameters=parameters)
    summary = json.loads(printed_value(explained, "waterfall"))
    assert (summary["account_id_l"], summary["account_id_r"]) == (
        weakest.account_id_l,
        weakest.account_id_r,
    )
    check_waterfall(summary, edges, prior_weight)
    assert png_count(explained) >= 1


def test_explain_match_names_a_pair_without_an_edge(
    out_dir: Path, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    edges = tables["match_edges"]
    matched = set(edges.account_id_l) | set(edges.account_id_r)
    first, second = sorted(set(tables["entity_membership"].account_id) - matched)[:2]
    parameters = f'ACCOUNT_A = "{first}"\nACCOUNT_B = "{second}"'
    with pytest.raises(CellExecutionError) as raised:
        execute(EXPLAIN, out_dir, tmp_path, parameters=parameters)
    message = str(raised.value)
    assert f"match_edges of run {E2E_RUN_ID} has no edge between {first} and {second}" in message
    assert "these two accounts have 0 with other accounts" in message
