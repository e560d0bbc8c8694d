"""What every output Delta table and each of its columns holds: the one source of that text.

The output writer (`jobs.outputs.OutputWriter`) gives each table its description (Delta's table
`description`, set through the `comment` table property) and each column its comment (the
field metadata `{"comment": ...}` Spark and delta-rs show) from `TABLES`; the table guide
`docs/tables.md` is generated from it too, and a test holds the committed guide to it:

    python -m jobs.table_docs --write docs/tables.md   # regenerate the guide
    python -m jobs.table_docs --check docs/tables.md   # exit 1 when the guide differs

A table the job writes with a column missing here is written without that column's comment
(the writer logs a warning) and fails `tests/test_table_docs.py`. Types are Delta's type names
(`array<struct>` stands for an array of structs whose fields the comment names).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "tables.md"


@dataclass(frozen=True)
class Column:
    """One column: its name, Delta type name and comment."""

    name: str
    type: str
    comment: str


@dataclass(frozen=True)
class TableDoc:
    """One output table: what a row is, its description, its columns in the table's order.

    `lifecycle` says how runs write it (replaced, merged, or a ledger keeping every run).
    """

    name: str
    row: str
    lifecycle: str
    description: str
    columns: tuple[Column, ...]

    @property
    def comments(self) -> Mapping[str, str]:
        """Column name -> comment."""
        return MappingProxyType({column.name: column.comment for column in self.columns})

    @property
    def table_comment(self) -> str:
        """The Delta table description: what a row is, the paragraph, and how runs write it."""
        return f"One row per {self.row}. {self.description} {self.lifecycle}"


# Phrases several tables share.
_REPLACED = "Replaced as a whole by every run (earlier runs stay readable by Delta time travel)."
_MERGED = (
    "Replaced by every full run; an incremental run MERGEs only the rows that changed, and rows "
    "that did not change keep the run_id of the run that wrote them."
)
_LEDGER = (
    "A ledger: every run adds its own rows (a re-run with the same run id replaces them) and "
    "keeps the earlier runs' rows, those of runs that failed or were killed among them: keep "
    "the run_ids whose runs row says succeeded to follow the results."
)
_ENTITY_ID = (
    "Entity id: 'E' + 16 hex characters of SHA-256 of the entity's smallest account id when the "
    "id was first issued; it then stays with the entity across runs (stable ids)."
)
_ACCOUNT_ID = "The platform's account id, as in the input's accounts.account_id."
_RUN_ID_REPLACED = "Id of the run that wrote this row (the table's current run)."
_RUN_ID_MERGED = (
    "Id of the run that last inserted or changed this row (an incremental run leaves unchanged "
    "rows with their earlier run's id)."
)
_RUN_ID_LEDGER = "Id of the run that wrote this row; tells the runs' rows apart."


def _columns(*columns: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, type_, comment) for name, type_, comment in columns)


_TABLE_LIST = (
    TableDoc(
        name="entity_membership",
        row="accepted input account",
        lifecycle=_MERGED,
        description=(
            "Which resolved entity (operator) each accepted seller account belongs to: every "
            "accepted account exactly once, single-account entities included. Quarantined "
            "accounts are absent."
        ),
        columns=_columns(
            ("account_id", "string", _ACCOUNT_ID),
            ("entity_id", "string", _ENTITY_ID),
            ("run_id", "string", _RUN_ID_MERGED),
        ),
    ),
    TableDoc(
        name="entities",
        row="resolved entity",
        lifecycle=_MERGED,
        description=(
            "Every resolved entity (a presumed real-world operator behind one or more seller "
            "accounts) with its size; its accounts are in entity_membership."
        ),
        columns=_columns(
            ("entity_id", "string", _ENTITY_ID),
            (
                "account_count",
                "long",
                "Number of accounts in the entity (its rows in entity_membership); 1 for a "
                "single account.",
            ),
            ("run_id", "string", _RUN_ID_MERGED),
        ),
    ),
    TableDoc(
        name="match_edges",
        row="accepted pair of accounts",
        lifecycle=_MERGED,
        description=(
            "Candidate pairs of accounts scored at or above the match threshold "
            "(resolution.model.threshold): the edges that connected components cluster into "
            "entities (cluster control may cut some of them). Each keeps the evidence of why "
            "the two accounts match; shared values are counted, never shown."
        ),
        columns=_columns(
            (
                "account_id_l",
                "string",
                "The pair's smaller account id (account_id_l < account_id_r).",
            ),
            ("account_id_r", "string", "The pair's larger account id."),
            (
                "match_probability",
                "double",
                "Probability that the two accounts have one operator, in [0, 1]: "
                "1 / (1 + 2^-match_weight).",
            ),
            (
                "match_weight",
                "double",
                "Match weight in bits (log2 Bayes factor): the evidence model's prior weight "
                "plus the weight of every shared rule, or the Fellegi-Sunter model's prior "
                "log-odds plus its comparisons' weights.",
            ),
            (
                "evidence",
                "array<struct>",
                "Why the pair matched, one struct per shared rule (evidence model: attribute, "
                "shared_values = how many values of it the two share, holders = accounts "
                "holding the least common of them, weight in bits) or per informative comparison "
                "(Fellegi-Sunter model: comparison, level, weight in bits, tf_adjustment). "
                "No value itself.",
            ),
            ("run_id", "string", _RUN_ID_MERGED),
        ),
    ),
    TableDoc(
        name="account_state",
        row="accepted input account",
        lifecycle=_MERGED,
        description=(
            "What the job knew of each account when it last resolved it: the base an "
            "incremental run compares a new snapshot with (new, changed, unchanged, removed "
            "accounts) and takes unchanged accounts' blocking values and profiles from. Only "
            "keyed hashes and standardised keys: no raw identity, card or bank number. Has "
            "Delta deletion vectors by default (outputs.deletion_vectors), so that an "
            "incremental MERGE rewrites no file: read it with Spark (delta-rs 1.6 does not "
            "read them)."
        ),
        columns=_columns(
            ("account_id", "string", _ACCOUNT_ID),
            (
                "fingerprint",
                "string",
                "HMAC-SHA256 (hex, keyed with the job's hash key) of the account's accounts, "
                "payment-instrument and logistics rows as read (before any check), whatever "
                "their order: changes when any of them changes.",
            ),
            (
                "blocking_keys",
                "array<struct>",
                "The account's blocking values as extracted from its own input, sorted "
                "structs of attribute (the blocking rule; also label_phone_address, phone "
                "and address key of a label; a label phone is kept as contact_phone, and "
                "each run judges again whether it is a desk phone) and value_key (the "
                "standardised value: identity and payment numbers as keyed hashes); empty "
                "when it has none.",
            ),
            (
                "key_probes",
                "array<binary>",
                "One 64-bit xxhash64 probe (8 bytes) per blocking value (of attribute and "
                "value_key) and per address those values hold (of the address and whether it "
                "is printed on a label): what an incremental run scans to find the unchanged "
                "holders of the values and addresses its change touches, instead of the keys. "
                "Hashes of the kept keys, so no raw number.",
            ),
            (
                "profile",
                "struct",
                "What the Fellegi-Sunter comparisons read of the account, so that an "
                "incremental run compares it without standardising it again: name key and "
                "tokens, E.164 phone, birth date, keyed hashes of the identity number and its "
                "one-character deletions, registration IP network, registered and logistics "
                "address tokens. Null when the run that wrote the row used the evidence score "
                "(it compares no profiles).",
            ),
            (
                "quarantined_rows",
                "integer",
                "How many of the account's accounts, payment-instrument and logistics rows "
                "were quarantined when it was last resolved: an incremental run checks the "
                "rows of such an account again (so that its quarantine rows are the run's "
                "too), and those of new and changed accounts, but no other row.",
            ),
            ("run_id", "string", _RUN_ID_MERGED),
        ),
    ),
    TableDoc(
        name="shared_keys",
        row="blocking value of an account, held by two accounts or more (or a desk phone)",
        lifecycle=_REPLACED,
        description=(
            "The population's blocking values that pair or link accounts, with their holder "
            "counts: every (account, attribute, value) whose value at least two accounts hold, "
            "and every label phone judged a desk phone. An incremental run with the evidence "
            "score updates them where its change reaches instead of counting the "
            "population's keys again (resolution.shared_keys); the job reads it, people "
            "rarely need to. Only keyed hashes and standardised keys: no raw identity, card "
            "or bank number."
        ),
        columns=_columns(
            ("account_id", "string", _ACCOUNT_ID),
            (
                "attribute",
                "string",
                "The blocking rule (phone, card, warehouse_address, ...); also desk_phone (a "
                "label phone printed only at hub addresses: no rule) and label_phone_address.",
            ),
            (
                "value_key",
                "string",
                "The standardised value, as in hub_values.value_key.",
            ),
            ("account_count", "long", "Number of accounts holding the value."),
            ("run_id", "string", _RUN_ID_REPLACED),
        ),
    ),
    TableDoc(
        name="hub_values",
        row="blocking value held by too many accounts",
        lifecycle=_REPLACED,
        description=(
            "Values held by more accounts than the run's hub cap (a consolidator's "
            "warehouse, a carrier's pickup point, a shared NAT address): "
            "resolution.blocking.max_block_size, or in a small population "
            "resolution.blocking.hub_share of the accounts (never under min_hub_size; the "
            "cap is the run's MLflow metric blocking.hub_cap). The job does not pair "
            "accounts on them, and lists them here to look at."
        ),
        columns=_columns(
            (
                "attribute",
                "string",
                "The blocking rule the value belongs to (phone, card, warehouse_address, ...).",
            ),
            (
                "value_key",
                "string",
                "The standardised value: identity, card, bank and other payment numbers as "
                "keyed HMAC-SHA256 hashes (hex); phones in E.164, emails canonical, addresses "
                "as romanised keys, IPs as their /24 or /48 network.",
            ),
            ("account_count", "long", "Number of accounts holding the value."),
            ("run_id", "string", _RUN_ID_REPLACED),
        ),
    ),
    TableDoc(
        name="entity_links",
        row="pair of linked entities and link type",
        lifecycle=_REPLACED,
        description=(
            "Relations between two different entities too weak or too common to merge on: "
            "their accounts hold the same logistics, payment or device value "
            "(resolution.network.attributes). A value held by more than "
            "resolution.network.max_entities_per_value entities links no one. Counts only, "
            "never a value."
        ),
        columns=_columns(
            ("entity_id_l", "string", "The pair's smaller entity id (entity_id_l < entity_id_r)."),
            ("entity_id_r", "string", "The pair's larger entity id."),
            (
                "link_type",
                "string",
                "'shared_' + the attribute the two entities share (shared_warehouse_address, "
                "shared_card, ...).",
            ),
            (
                "shared_value_count",
                "long",
                "Number of distinct values of that attribute both entities hold.",
            ),
            (
                "max_value_holders",
                "integer",
                "Number of entities holding the commonest of those values (2: the values are "
                "the pair's alone).",
            ),
            ("run_id", "string", _RUN_ID_REPLACED),
        ),
    ),
    TableDoc(
        name="entity_leads",
        row="entity worth a look",
        lifecycle=_REPLACED,
        description=(
            "Entities ranked for investigation: those with at least resolution.leads."
            "min_accounts accounts or resolution.leads.min_signals enforcement signals, "
            "scored from their signals (weighted by type, resolution.leads.signal_weights), "
            "size, values shared inside and match strength, with the reasons in words. "
            "Signals never decide a match; they only rank."
        ),
        columns=_columns(
            ("entity_id", "string", _ENTITY_ID),
            (
                "lead_rank",
                "integer",
                "Rank by lead_score, 1 first; ties by entity_id. The score's sums are exact, so "
                "the ranks do not depend on partitioning.",
            ),
            (
                "lead_score",
                "double",
                "With a signal: (1 + log2(1 + weighted_signals)) * (1 + structure); without: "
                "structure / (1 + structure) < 1; structure = log2(account_count) + "
                "log2(1 + shared_value_count) + mean_match_probability (each times its "
                "resolution.leads weight).",
            ),
            (
                "reasons",
                "string",
                "The score in words: accounts, values shared inside by attribute, match "
                "strength, signals by type. Counts and attribute names only.",
            ),
            ("account_count", "long", "Number of accounts in the entity."),
            (
                "signal_count",
                "long",
                "Enforcement signals against the entity's accounts, all types (a signal "
                "without a count counts 1).",
            ),
            ("rights_holder_complaints", "long", "Signals of type rights_holder_complaint."),
            ("customer_complaints", "long", "Signals of type customer_complaint."),
            ("test_buys_counterfeit", "long", "Signals of type test_buy_counterfeit."),
            ("listing_takedowns", "long", "Signals of type listing_takedown."),
            ("other_signals", "long", "Signals of type other (or of an unknown type)."),
            (
                "accounts_with_signals",
                "long",
                "Number of the entity's accounts with at least one signal.",
            ),
            (
                "weighted_signals",
                "double",
                "Sum over the entity's signals of signal_count times the type's weight "
                "(resolution.leads.signal_weights).",
            ),
            (
                "shared_value_count",
                "long",
                "Distinct values (of resolution.leads.attributes) held by two or more of the "
                "entity's accounts and by at most resolution.leads.max_value_holders accounts "
                "in all.",
            ),
            (
                "mean_match_probability",
                "double",
                "Mean match_probability of the accepted pairs inside the entity (averaged "
                "exactly at 15 decimal places); null without any.",
            ),
            ("matched_pairs", "long", "Number of accepted pairs (match_edges) inside the entity."),
            ("run_id", "string", _RUN_ID_REPLACED),
        ),
    ),
    TableDoc(
        name="quarantine",
        row="rejected input row",
        lifecycle=_LEDGER,
        description=(
            "Input rows the job did not accept, with why; for every dataset, accepted plus "
            "quarantined rows equal the rows read. Identity and payment numbers in the record "
            "are masked to their last four characters."
        ),
        columns=_columns(
            (
                "dataset",
                "string",
                "Input dataset of the row: accounts, payment_instruments, logistics or "
                "enforcement_signals.",
            ),
            (
                "record",
                "string",
                "The row as JSON, identity and payment numbers masked to '****' plus their "
                "last four characters; a CSV line that does not parse is kept as "
                '{"_corrupt_record": line} with long digit runs masked.',
            ),
            ("reason", "string", "Which column, and what was wrong with it."),
            ("run_id", "string", _RUN_ID_LEDGER),
        ),
    ),
    TableDoc(
        name="entity_changes",
        row="change of an entity id between consecutive runs",
        lifecycle=_LEDGER,
        description=(
            "How this run's entities relate to the previous succeeded run's: which ids were "
            "born, split off, merged away or retired. An entity that kept its id has no row, "
            "even when accounts joined or left it."
        ),
        columns=_columns(
            ("entity_id", "string", "The entity id the change is about (see change_type)."),
            (
                "change_type",
                "string",
                "born (new id, no account was in an entity before), split_from (new id for "
                "accounts of a previous entity), merged_into (previous id no entity kept), "
                "retired (previous id, all its accounts gone).",
            ),
            (
                "related_entity_id",
                "string",
                "split_from: the previous entity it came from; merged_into: the entity now "
                "holding most of its accounts; null for born and retired.",
            ),
            (
                "account_count",
                "long",
                "born, split_from: the new entity's size; merged_into, retired: the previous "
                "entity's size.",
            ),
            (
                "overlap_count",
                "long",
                "Accounts entity_id and related_entity_id share; null for born and retired.",
            ),
            ("run_id", "string", _RUN_ID_LEDGER),
        ),
    ),
    TableDoc(
        name="entity_splits",
        row="split of an entity by cluster control",
        lifecycle=_LEDGER,
        description=(
            "Entities that connected components made too large for their evidence (over "
            "resolution.cluster_control.max_size accounts, too sparse, or held together by a "
            "few weak edges) and that cluster control split, round by round, with the reason "
            "in words. Weights are on the evidence score's scale (bits)."
        ),
        columns=_columns(
            ("entity_id", "string", "The entity's id before the split."),
            ("round", "integer", "Cluster-control round of the split (1 first)."),
            ("reason", "string", "Why the entity was re-examined, in words."),
            (
                "method",
                "string",
                "bridges (weak cut edges removed) or threshold (its match-weight threshold "
                "raised).",
            ),
            (
                "threshold",
                "double",
                "The raised match-weight threshold in bits (method threshold); null for bridges.",
            ),
            ("removed_edges", "long", "Number of accepted edges removed inside the entity."),
            ("parts", "long", "Number of parts the entity was split into."),
            ("part_sizes", "array<long>", "Accounts per part, largest first."),
            ("account_count", "long", "Accounts in the entity before the split."),
            ("edge_count", "long", "Accepted edges inside the entity before the split."),
            (
                "density",
                "double",
                "edge_count / (n (n - 1) / 2) for n = account_count, before the split.",
            ),
            ("min_weight", "double", "Weakest match_weight inside the entity, in bits."),
            ("run_id", "string", _RUN_ID_LEDGER),
        ),
    ),
    TableDoc(
        name="runs",
        row="run of the job",
        lifecycle=(
            "A ledger: each run writes its row when it starts (running) and again when it "
            "ends (succeeded or failed)."
        ),
        description=(
            "Every run of the job in this output folder, with the Delta version of every "
            "table it wrote: readers take the latest succeeded run and read each table at the "
            "version its table_versions names."
        ),
        columns=_columns(
            (
                "run_id",
                "string",
                "The run's id (--run-id, else UTC start time and a random suffix).",
            ),
            ("started_at", "timestamp", "When the run started (UTC)."),
            ("finished_at", "timestamp", "When the run ended (UTC); null while running."),
            ("status", "string", "running, succeeded or failed."),
            (
                "table_versions",
                "string",
                "JSON object: table name -> the Delta version holding this run's rows.",
            ),
            (
                "input_counts",
                "string",
                "JSON object: dataset -> {read, accepted, quarantined} row counts.",
            ),
            (
                "output_counts",
                "string",
                "JSON object: table -> rows written, plus largest_entity (accounts); null "
                "unless succeeded.",
            ),
            (
                "config",
                "string",
                "The run's whole configuration as JSON (no secret: the hash key is never in "
                "the config).",
            ),
            (
                "error",
                "string",
                "For a failed run, the error's type and message (at most 2,000 characters).",
            ),
        ),
    ),
)

TABLES: Mapping[str, TableDoc] = MappingProxyType({table.name: table for table in _TABLE_LIST})


def undocumented_columns(table: str, columns: Sequence[str]) -> list[str]:
    """The `columns` of `table` that have no comment here (all of them for an unknown table)."""
    doc = TABLES.get(table)
    known = doc.comments if doc is not None else {}
    return [column for column in columns if column not in known]


def _cell(text: str) -> str:
    """`text` for a Markdown table cell: `|` ends a cell, `*` may start emphasis."""
    return text.replace("|", "\\|").replace("*", "\\*")


def render_guide() -> str:
    """The table guide (`docs/tables.md`) as Markdown."""
    lines = [
        "# Output tables",
        "",
        "<!-- Generated from jobs/table_docs.py by `python -m jobs.table_docs --write "
        "docs/tables.md`; edit that module, not this file. -->",
        "",
        "Delta tables under `OUT_DIR`. The same text is on the tables themselves: each table's "
        "description (`DESCRIBE DETAIL`, `DeltaTable(path).metadata().description` in "
        "delta-rs) and each column's comment (`DESCRIBE TABLE`, field metadata `comment` in "
        "delta-rs). No table holds a raw identity, card or bank number: keyed hashes, masked "
        "forms and counts only.",
        "",
        "| table | one row per |",
        "|---|---|",
    ]
    lines.extend(f"| [`{t.name}`](#{t.name}) | {_cell(t.row)} |" for t in _TABLE_LIST)
    for table in _TABLE_LIST:
        lines += [
            "",
            f"## {table.name}",
            "",
            f"One row per {table.row}. {_cell(table.description)}",
            "",
            table.lifecycle,
            "",
            "| column | type | description |",
            "|---|---|---|",
        ]
        lines.extend(
            f"| `{column.name}` | {column.type} | {_cell(column.comment)} |"
            for column in table.columns
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the guide, write it (`--write PATH`) or compare it with a file (`--check PATH`)."""
    parser = argparse.ArgumentParser(
        prog="table_docs", description="Generate the output table guide from jobs/table_docs.py."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", type=Path, help="write the guide to this file")
    action.add_argument("--check", type=Path, help="exit 1 when this file is not the guide")
    args = parser.parse_args(argv)
    guide = render_guide()
    if args.write is not None:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(guide, encoding="utf-8")
        return 0
    if args.check is not None:
        current = args.check.read_text(encoding="utf-8") if args.check.is_file() else None
        if current != guide:
            print(
                f"{args.check} differs from jobs/table_docs.py: run "
                f"`python -m jobs.table_docs --write {args.check}`",
                file=sys.stderr,
            )
            return 1
        return 0
    sys.stdout.write(guide)
    return 0


if __name__ == "__main__":
    sys.exit(main())
