"""The output tables' descriptions (`jobs/table_docs.py`): complete, the source of the committed
guide `docs/tables.md`, and on every table and column of a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable
from deltalake.schema import ArrayType, DataType, MapType, PrimitiveType, StructType

from jobs.outputs import LEDGER_TABLES, REPLACED_TABLES, RUNS_SCHEMA
from jobs.table_docs import GUIDE, TABLES, main, render_guide, undocumented_columns
from resolution.cluster_control import SPLITS_SCHEMA
from resolution.network import LEAD_COLUMNS


def _type_name(data_type: DataType) -> str:
    """A delta-rs type as the docs name it: `string`, `array<long>`, `array<struct>`."""
    if isinstance(data_type, PrimitiveType):
        return data_type.type
    if isinstance(data_type, ArrayType):
        return f"array<{_type_name(data_type.element_type)}>"
    if isinstance(data_type, StructType):
        return "struct"
    if isinstance(data_type, MapType):
        return "map"
    raise AssertionError(f"no doc name for {data_type!r}")


def _delta_tables(out: Path) -> list[str]:
    return sorted(path.name for path in out.iterdir() if (path / "_delta_log").is_dir())


# The module ---------------------------------------------------------------------------------
def test_every_table_the_writer_knows_is_documented() -> None:
    assert set(TABLES) == {*REPLACED_TABLES, *LEDGER_TABLES}


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("runs", RUNS_SCHEMA.fieldNames()),
        ("entity_leads", [*LEAD_COLUMNS, "run_id"]),
        ("entity_splits", [*[part.split()[0] for part in SPLITS_SCHEMA.split(", ")], "run_id"]),
    ],
)
def test_columns_of_the_schemas_in_code_are_documented_in_order(
    table: str, columns: list[str]
) -> None:
    assert [column.name for column in TABLES[table].columns] == columns


def test_every_description_and_comment_is_written_out() -> None:
    for table in TABLES.values():
        texts = [table.row, table.description, table.lifecycle]
        texts += [column.comment for column in table.columns]
        for text in texts:
            assert text and text == text.strip() and "  " not in text, (table.name, text)
        for text in [table.description, table.lifecycle, *table.comments.values()]:
            assert text.endswith("."), (table.name, text)
        names = [column.name for column in table.columns]
        assert len(names) == len(set(names)), table.name
        assert names[-1] == "run_id" or table.name == "runs"
        assert table.table_comment.startswith(f"One row per {table.row}. ")


def test_undocumented_columns_are_named() -> None:
    assert undocumented_columns("entities", ["entity_id", "size", "run_id"]) == ["size"]
    assert undocumented_columns("no_such_table", ["a", "b"]) == ["a", "b"]


def test_committed_guide_is_the_one_the_module_generates(tmp_path: Path) -> None:
    assert GUIDE.read_text(encoding="utf-8") == render_guide(), (
        "docs/tables.md is stale: run `python -m jobs.table_docs --write docs/tables.md`"
    )
    assert main(["--check", str(GUIDE)]) == 0
    stale = tmp_path / "tables.md"
    stale.write_text(render_guide().replace("One row per", "A row per"), encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert main(["--write", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == render_guide()


def test_guide_lists_every_table_and_column() -> None:
    guide = render_guide()
    for table in TABLES.values():
        assert f"\n## {table.name}\n" in guide
        for column in table.columns:
            assert f"| `{column.name}` | {column.type} |" in guide


# A real run -----------------------------------------------------------------------------------
def test_every_table_of_a_run_is_documented_and_every_column_commented(
    first_run: tuple[Path, object],
) -> None:
    out, _ = first_run
    assert _delta_tables(out) == sorted(TABLES)  # nothing written undocumented, nothing stale
    for name in _delta_tables(out):
        table = DeltaTable(str(out / name))
        doc = TABLES[name]
        fields = table.schema().fields
        found = {field.name: field.metadata.get("comment") for field in fields}
        missing = [column for column, comment in found.items() if not comment]
        assert not missing, f"{name}: no comment on {missing}: describe them in jobs/table_docs.py"
        assert found == dict(doc.comments), name
        assert {field.name: _type_name(field.type) for field in fields} == {
            column.name: column.type for column in doc.columns
        }, name
        assert table.metadata().description == doc.table_comment, name


def test_the_comments_came_with_the_writes(first_run: tuple[Path, object]) -> None:
    # A first run needs no ALTER COLUMN: every table was created with its comments.
    out, _ = first_run
    for name in _delta_tables(out):
        operations = {entry["operation"] for entry in DeltaTable(str(out / name)).history()}
        assert not operations & {"CHANGE COLUMN", "CHANGE COLUMNS"}, (name, operations)
