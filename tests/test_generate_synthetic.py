"""Tests of the synthetic-data generator (jobs/generate_synthetic.py): pandas and pyarrow only.

The generated data is checked against the data contract (columns, types, both file formats),
against its own ground truth (rings connected through shared strong values, hubs shared by
unrelated entities, households of different entities) and against reference validators
(python-stdnum, phonenumbers). Values are normalised here with a small independent normaliser,
not with the generator's code.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import defaultdict
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pypinyin import lazy_pinyin
from stdnum import luhn
from stdnum.cn import ric, uscc

from features import columns as cols
from jobs import generate_synthetic as gen
from jobs.generate_synthetic import SyntheticData, generate, main, write
from resolution.errors import ConfigError

# The contract's columns, in contract order, with their logical types.
CONTRACT: dict[str, list[tuple[str, str]]] = {
    cols.ACCOUNTS: [
        (cols.ACCOUNT_ID, "string"),
        (cols.PLATFORM, "string"),
        (cols.REGISTERED_AT, "timestamp"),
        (cols.SHOP_NAME, "string"),
        (cols.LEGAL_NAME, "string"),
        (cols.ID_TYPE, "string"),
        (cols.ID_NUMBER, "string"),
        (cols.PHONE, "string"),
        (cols.EMAIL, "string"),
        (cols.REGISTRATION_IP, "string"),
        (cols.DEVICE_ID, "string"),
        (cols.COUNTRY, "string"),
        (cols.PROVINCE, "string"),
        (cols.CITY, "string"),
        (cols.ADDRESS, "string"),
    ],
    cols.PAYMENT_INSTRUMENTS: [
        (cols.ACCOUNT_ID, "string"),
        (cols.INSTRUMENT_TYPE, "string"),
        (cols.INSTRUMENT_ID, "string"),
        (cols.HOLDER_NAME, "string"),
        (cols.BANK_NAME, "string"),
        (cols.ADDED_AT, "timestamp"),
    ],
    cols.LOGISTICS: [
        (cols.ACCOUNT_ID, "string"),
        (cols.ROLE, "string"),
        (cols.CONTACT_NAME, "string"),
        (cols.CONTACT_PHONE, "string"),
        (cols.ADDRESS, "string"),
        (cols.CITY, "string"),
        (cols.PROVINCE, "string"),
        (cols.POSTCODE, "string"),
        (cols.COUNTRY, "string"),
        (cols.SHIPMENT_COUNT, "int64"),
        (cols.FIRST_USED_AT, "timestamp"),
        (cols.LAST_USED_AT, "timestamp"),
    ],
    cols.ENFORCEMENT_SIGNALS: [
        (cols.ACCOUNT_ID, "string"),
        (cols.SIGNAL_TYPE, "string"),
        (cols.SIGNAL_COUNT, "int64"),
        (cols.OBSERVED_AT, "timestamp"),
    ],
}

# --------------------------------------------------------------------------------------------
# An independent normaliser for the tests
# --------------------------------------------------------------------------------------------

_HAN_RUN = re.compile(r"([\u4e00-\u9fff]+)")
# Generic address words in Han (romanised) and Latin letters.
_ADDRESS_STOPWORDS = frozenset(
    {
        "sheng",
        "shi",
        "qu",
        "lu",
        "jie",
        "hao",
        "road",
        "rd",
        "street",
        "st",
        "no",
        "district",
        "province",
        "room",
        "rm",
    }
)


@functools.cache
def _romanise(han: str) -> tuple[str, ...]:
    # Runs of Han characters repeat a lot (province, city, district, road); pypinyin is slow.
    return tuple(lazy_pinyin(han))


def address_key(text: str) -> str:
    """Romanise, lower-case, drop generic words and order the letters: one key per place."""
    tokens: list[str] = []
    for run in _HAN_RUN.split(unicodedata.normalize("NFKC", text).lower()):
        if _HAN_RUN.fullmatch(run):
            tokens.extend(_romanise(run))
        else:
            tokens.extend(re.findall(r"[a-z]+|[0-9]+", run))
    return "".join(sorted("".join(t for t in tokens if t not in _ADDRESS_STOPWORDS)))


def phone_key(text: str) -> str:
    """The 11-digit national number of a Chinese mobile written any way."""
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text))[-11:]


def instrument_key(text: str) -> str:
    return re.sub(r"[\s\-]", "", unicodedata.normalize("NFKC", text)).lower()


def id_key(text: str) -> str:
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", text)).upper()


def valid_accounts(data: SyntheticData) -> pd.DataFrame:
    """Accounts rows with a usable id, the first row of a duplicated id only."""
    ids = data.accounts[cols.ACCOUNT_ID]
    return data.accounts[ids.notna() & (ids != "") & ~ids.duplicated()]


def entity_of(data: SyntheticData) -> dict[str, str]:
    return dict(zip(data.truth[cols.ACCOUNT_ID], data.truth[cols.ENTITY_ID], strict=True))


def strong_values(data: SyntheticData, account_ids: set[str]) -> pd.DataFrame:
    """(account_id, value) for every strong value the given accounts use: card, bank account
    and Alipay numbers, device, logistics address and label contact phone."""
    accounts = valid_accounts(data)
    accounts = accounts[accounts[cols.ACCOUNT_ID].isin(account_ids)]
    pay = data.payment_instruments
    pay = pay[
        pay[cols.INSTRUMENT_TYPE].isin(["card", "bank_account", "alipay"])
        & pay[cols.INSTRUMENT_ID].notna()
        & pay[cols.ACCOUNT_ID].isin(account_ids)
    ]
    log = data.logistics[data.logistics[cols.ACCOUNT_ID].isin(account_ids)]
    parts = [
        pd.DataFrame(
            {
                "account_id": accounts[cols.ACCOUNT_ID],
                "value": "device:" + accounts[cols.DEVICE_ID].str.strip().str.lower(),
            }
        ),
        pd.DataFrame(
            {
                "account_id": pay[cols.ACCOUNT_ID],
                "value": "instrument:" + pay[cols.INSTRUMENT_ID].map(instrument_key),
            }
        ),
        pd.DataFrame(
            {
                "account_id": log[cols.ACCOUNT_ID],
                "value": "address:" + log[cols.ADDRESS].map(address_key, na_action="ignore"),
            }
        ),
        pd.DataFrame(
            {
                "account_id": log[cols.ACCOUNT_ID],
                "value": "phone:" + log[cols.CONTACT_PHONE].map(phone_key, na_action="ignore"),
            }
        ),
    ]
    return pd.concat(parts, ignore_index=True).dropna().drop_duplicates()


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_20k() -> SyntheticData:
    """The default population at 20,000 accounts (about 2 s)."""
    return generate(accounts=20_000, seed=7)


@pytest.fixture(scope="module")
def data_20k_suppliers() -> SyntheticData:
    """20,000 accounts with upstream suppliers (off by default), at a realistic share."""
    return generate(accounts=20_000, seed=7, supplier_share=0.15)


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    """A small population with a high malformed rate, so every malformed kind shows."""
    return generate(accounts=3_000, seed=11, malformed_rate=0.01)


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_bytes(tmp_path: Path) -> None:
    first = generate(accounts=1_500, seed=5)
    second = generate(accounts=1_500, seed=5)
    for name in (*cols.INPUT_DATASETS, "truth", "malformed", "entities", "links"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    for fmt in ("parquet", "csv"):
        write(
            first,
            tmp_path / f"a_{fmt}" / "in",
            fmt=fmt,
            truth_path=tmp_path / f"a_{fmt}" / f"truth.{fmt}",
        )
        write(
            second,
            tmp_path / f"b_{fmt}" / "in",
            fmt=fmt,
            truth_path=tmp_path / f"b_{fmt}" / f"truth.{fmt}",
        )
        for path in sorted((tmp_path / f"a_{fmt}").rglob("*.*")):
            twin = tmp_path / f"b_{fmt}" / path.relative_to(tmp_path / f"a_{fmt}")
            assert path.read_bytes() == twin.read_bytes(), path.name


def test_cli_streaming_writes_the_same_bytes_as_write(tmp_path: Path) -> None:
    write(
        generate(accounts=800, seed=9),
        tmp_path / "mem" / "in",
        fmt="csv",
        truth_path=tmp_path / "mem" / "truth.csv",
    )
    assert (
        main(
            [
                "--output",
                str(tmp_path / "cli" / "in"),
                "--accounts",
                "800",
                "--seed",
                "9",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    written = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*.*"))
    assert [str(p) for p in written] == [
        "in/accounts.csv",
        "in/enforcement_signals.csv",
        "in/logistics.csv",
        "in/payment_instruments.csv",
        "truth.csv",
        "truth_entities.csv",
        "truth_links.csv",
        "truth_malformed.csv",
    ]
    for relative in written:
        assert (tmp_path / "cli" / relative).read_bytes() == (
            tmp_path / "mem" / relative
        ).read_bytes(), relative


def test_different_seeds_give_different_data() -> None:
    one = generate(accounts=500, seed=1)
    two = generate(accounts=500, seed=2)
    assert set(one.accounts[cols.ACCOUNT_ID].dropna()).isdisjoint(
        set(two.accounts[cols.ACCOUNT_ID].dropna()) - {""}
    )
    assert one.accounts[cols.PHONE].tolist() != two.accounts[cols.PHONE].tolist()
    assert one.accounts[cols.LEGAL_NAME].tolist() != two.accounts[cols.LEGAL_NAME].tolist()


# --------------------------------------------------------------------------------------------
# Contract: columns and types in both formats; truth
# --------------------------------------------------------------------------------------------


def _arrow_kind(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return str(t)


def test_parquet_has_contract_columns_and_types(small: SyntheticData, tmp_path: Path) -> None:
    write(small, tmp_path / "in", fmt="parquet", truth_path=tmp_path / "truth.parquet")
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == [
        "accounts.parquet",
        "enforcement_signals.parquet",
        "logistics.parquet",
        "payment_instruments.parquet",
    ]
    for name, expected in CONTRACT.items():
        schema = pq.read_schema(tmp_path / "in" / f"{name}.parquet")
        assert [(f.name, _arrow_kind(f.type)) for f in schema] == expected, name
        for f in schema:
            if pa.types.is_timestamp(f.type):
                # Microseconds, UTC-adjusted: what Spark reads as TimestampType.
                assert (f.type.unit, f.type.tz) == ("us", "UTC")
    truth = pq.read_table(tmp_path / "truth.parquet")
    assert truth.schema.names == [cols.ACCOUNT_ID, cols.ENTITY_ID]
    back = pd.read_parquet(tmp_path / "in" / "logistics.parquet")
    pd.testing.assert_frame_equal(back, small.logistics)


def test_csv_has_contract_columns_iso_timestamps_and_listed_bad_ones(
    small: SyntheticData, tmp_path: Path
) -> None:
    write(small, tmp_path / "in", fmt="csv", truth_path=tmp_path / "truth.csv")
    for name, expected in CONTRACT.items():
        path = tmp_path / "in" / f"{name}.csv"
        text = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        assert list(text.columns) == [c for c, _ in expected]
        assert len(text) == len(getattr(small, name))
        listed = small.malformed[(small.malformed["dataset"] == name) & small.malformed["csv_only"]]
        for column, kind in expected:
            if kind == "int64":
                assert pd.to_numeric(text[column]).dtype == np.int64
            if kind != "timestamp":
                continue
            values = text[column]
            bad = set(listed.loc[listed["column"] == column, "row"])
            good = values[[i not in bad and v != "" for i, v in enumerate(values)]]
            assert good.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all(), column
            parsed = pd.to_datetime(good, format="ISO8601", utc=True)
            expected_values = getattr(small, name)[column].iloc[good.index]
            assert (parsed.to_numpy() == expected_values.to_numpy()).all()
            for row in bad:
                assert pd.isna(pd.to_datetime(values[row], errors="coerce", format="ISO8601"))
                assert values[row] in gen._MALFORMED_TIMESTAMPS
    # RFC 4180: a shop name with a comma and quotes survives the round trip.
    accounts = pd.read_csv(tmp_path / "in" / "accounts.csv", dtype=str, keep_default_na=False)
    original = small.accounts[cols.SHOP_NAME].fillna("")
    tricky = original.str.contains('"') | original.str.contains(",")
    assert tricky.any()
    assert (accounts[cols.SHOP_NAME][tricky] == original[tricky]).all()


def test_truth_covers_every_account_and_never_sits_in_the_input_dir(
    small: SyntheticData, tmp_path: Path
) -> None:
    ids = valid_accounts(small)[cols.ACCOUNT_ID]
    assert set(small.truth[cols.ACCOUNT_ID]) == set(ids)
    assert small.truth[cols.ACCOUNT_ID].is_unique
    assert small.truth[cols.ENTITY_ID].str.fullmatch(r"T\d{6,}").all()
    with pytest.raises(ConfigError, match="inside the input directory"):
        write(small, tmp_path / "in", fmt="parquet", truth_path=tmp_path / "in" / "t.parquet")
    assert main(["--output", str(tmp_path / "run" / "in"), "--accounts", "300"]) == 0
    assert (tmp_path / "run" / "truth.parquet").is_file()
    assert not any("truth" in p.name for p in (tmp_path / "run" / "in").iterdir())
    assert (
        main(
            [
                "--output",
                str(tmp_path / "x"),
                "--accounts",
                "300",
                "--truth",
                str(tmp_path / "x" / "truth.parquet"),
            ]
        )
        == 2
    )


def test_invalid_knobs_are_reported_together() -> None:
    with pytest.raises(ConfigError) as error:
        generate(accounts=0, seed=1, ring_share=1.5, noise=-1.0)
    message = str(error.value)
    assert "accounts must be >= 1" in message
    assert "ring_share" in message and "noise" in message


# --------------------------------------------------------------------------------------------
# Population shape
# --------------------------------------------------------------------------------------------


def test_entity_kinds_and_sizes(data_20k: SyntheticData) -> None:
    entities = data_20k.entities
    accounts_by_kind = entities.groupby("kind")[cols.ACCOUNT_COUNT].sum()
    ring_sizes = entities.loc[entities["kind"] == "ring", cols.ACCOUNT_COUNT]
    operator_sizes = entities.loc[entities["kind"] == "operator", cols.ACCOUNT_COUNT]
    assert ring_sizes.between(5, 150).all() and operator_sizes.between(2, 5).all()
    assert (entities.loc[entities["kind"] == "single", cols.ACCOUNT_COUNT] == 1).all()
    assert abs(accounts_by_kind["ring"] - 5_000) < 5  # --ring-share 0.25 of 20,000 accounts
    assert (ring_sizes <= 30).mean() > 0.75 and ring_sizes.max() > 80  # heavy tail
    counted = data_20k.truth.groupby(cols.ENTITY_ID).size()
    assert (
        counted.reindex(entities[cols.ENTITY_ID]).to_numpy()
        == entities[cols.ACCOUNT_COUNT].to_numpy()
    ).all()
    assert accounts_by_kind.sum() == 20_000


def test_accounts_have_up_to_three_instruments_and_four_logistics_rows(
    data_20k: SyntheticData,
) -> None:
    ids = valid_accounts(data_20k)[cols.ACCOUNT_ID]
    for name, most in ((cols.PAYMENT_INSTRUMENTS, 3), (cols.LOGISTICS, 4)):
        frame = getattr(data_20k, name)
        listed = data_20k.malformed[
            (data_20k.malformed["dataset"] == name) & ~data_20k.malformed["csv_only"]
        ]
        rows = frame.drop(index=listed["row"].to_numpy())
        per_account = rows.groupby(cols.ACCOUNT_ID).size().reindex(ids, fill_value=0)
        assert per_account.max() == most, name
        assert (per_account == 0).any(), name


def test_rings_are_connected_through_strong_assets_and_sparse(data_20k: SyntheticData) -> None:
    entity = entity_of(data_20k)
    rings = set(data_20k.entities.loc[data_20k.entities["kind"] == "ring", cols.ENTITY_ID])
    ring_accounts = {a for a, e in entity.items() if e in rings}
    uses = strong_values(data_20k, ring_accounts)
    sharing: dict[tuple[str, str], list[str]] = defaultdict(list)  # (ring, value) -> accounts
    for account, value in zip(uses["account_id"], uses["value"], strict=True):
        sharing[(entity[account], value)].append(account)
    graphs: dict[str, nx.Graph] = defaultdict(nx.Graph)
    for account in sorted(ring_accounts):
        graphs[entity[account]].add_node(account)
    direct: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for (ring_id, _), accounts in sharing.items():
        graphs[ring_id].add_edges_from(itertools.pairwise(sorted(accounts)))
        direct[ring_id].update(itertools.combinations(sorted(accounts), 2))
    assert set(graphs) == rings
    disconnected = [r for r, g in graphs.items() if not nx.is_connected(g)]
    assert disconnected == []
    # Chains, not cliques: in large rings most pairs share no strong value directly.
    for ring_id, g in graphs.items():
        n = g.number_of_nodes()
        if n >= 50:
            assert len(direct[ring_id]) < 0.2 * n * (n - 1) / 2, ring_id
    # Some ring holds together through a bridge: removing one account-pair link splits it.
    assert any(nx.has_bridges(g) for g in graphs.values() if g.number_of_nodes() >= 20)


def hub_sizes(data: SyntheticData) -> dict[str, pd.Series]:
    """Distinct true entities per value, for the hub kinds: warehouse and pickup addresses,
    registration IPs, 'other' instruments, label contact phones, legal names."""
    entity = entity_of(data)
    log = data.logistics[data.logistics[cols.ACCOUNT_ID].isin(entity)]
    log = log.assign(entity=log[cols.ACCOUNT_ID].map(entity))
    places = log[log[cols.ROLE].isin(["warehouse", "pickup"])].dropna(subset=[cols.ADDRESS])
    places = places.assign(key=places[cols.ADDRESS].map(address_key))
    accounts = valid_accounts(data)
    accounts = accounts.assign(entity=accounts[cols.ACCOUNT_ID].map(entity))
    pay = data.payment_instruments.dropna(subset=[cols.INSTRUMENT_ID])
    pay = pay[pay[cols.ACCOUNT_ID].isin(entity) & (pay[cols.INSTRUMENT_TYPE] == "other")]
    pay = pay.assign(
        entity=pay[cols.ACCOUNT_ID].map(entity), key=pay[cols.INSTRUMENT_ID].map(instrument_key)
    )
    log = log.dropna(subset=[cols.CONTACT_PHONE])
    return {
        "warehouse": places[places[cols.ROLE] == "warehouse"].groupby("key")["entity"].nunique(),
        "pickup": places[places[cols.ROLE] == "pickup"].groupby("key")["entity"].nunique(),
        "ip": accounts.groupby(accounts[cols.REGISTRATION_IP].str.strip().str.lower())[
            "entity"
        ].nunique(),
        "other": pay.groupby("key")["entity"].nunique(),
        "label_phone": log.groupby(log[cols.CONTACT_PHONE].map(phone_key))["entity"].nunique(),
        "name": accounts.groupby(accounts[cols.LEGAL_NAME].str.replace(r"\s", "", regex=True))[
            "entity"
        ].nunique(),
    }


def test_hub_values_are_shared_by_many_unrelated_entities(data_20k: SyntheticData) -> None:
    hubs = hub_sizes(data_20k)
    assert hubs["warehouse"].max() >= 100  # a consolidator's warehouse
    assert hubs["pickup"].max() >= 100  # a carrier pickup point
    assert hubs["ip"].max() >= 500  # a mobile-carrier NAT address
    assert re.match(r"(223\.104|117\.136|112\.97|39\.144|223\.73|117\.188)\.", hubs["ip"].idxmax())
    assert hubs["other"].max() >= 100  # a payment service's collection account
    assert hubs["label_phone"].max() >= 20  # a consolidator's desk phone on labels
    common = hubs["name"].reindex(["张伟", "王伟", "王芳", "李伟"]).fillna(0)
    assert (common >= 20).all(), common


def supplier_holders(data: SyntheticData) -> dict[tuple[str, str], set[str]]:
    """(link type, value) -> true entities holding it, for warehouse addresses and label
    contact phones."""
    entity = entity_of(data)
    log = data.logistics[data.logistics[cols.ACCOUNT_ID].isin(entity)]
    held: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account, role, address, phone in zip(
        log[cols.ACCOUNT_ID],
        log[cols.ROLE],
        log[cols.ADDRESS],
        log[cols.CONTACT_PHONE],
        strict=True,
    ):
        if role == "warehouse" and isinstance(address, str):
            held[("shared_warehouse_address", address_key(address))].add(entity[account])
        if isinstance(phone, str):
            held[("shared_contact_phone", phone_key(phone))].add(entity[account])
    return held


def test_upstream_suppliers_relate_two_to_four_rings(data_20k_suppliers: SyntheticData) -> None:
    links = data_20k_suppliers.links
    assert list(links.columns) == ["entity_id_l", "entity_id_r", "link_type", "supplier_id"]
    assert (links["entity_id_l"] < links["entity_id_r"]).all()
    assert not links.duplicated(["entity_id_l", "entity_id_r", "supplier_id"]).any()
    kinds = dict(
        zip(
            data_20k_suppliers.entities[cols.ENTITY_ID],
            data_20k_suppliers.entities["kind"],
            strict=True,
        )
    )
    related = set(links["entity_id_l"]) | set(links["entity_id_r"])
    assert {kinds[e] for e in related} == {"ring"}
    rings = sum(k == "ring" for k in kinds.values())
    suppliers = links.groupby("supplier_id")
    # A modest rate: 15% of the rings are customers (fewer when a ring has no eligible account).
    members = pd.concat(
        [
            links[["supplier_id", side]].set_axis(["supplier_id", "entity"], axis=1)
            for side in ("entity_id_l", "entity_id_r")
        ]
    ).drop_duplicates()
    customers = members.groupby("supplier_id").size()
    assert customers.between(2, 4).all()
    assert 0.08 * rings <= customers.sum() <= 0.15 * rings + 1
    assert (suppliers.size() == customers * (customers - 1) // 2).all()
    assert set(links["link_type"]) == {"shared_warehouse_address", "shared_contact_phone"}
    # Each supplier's value is held by exactly its customer rings: one value per supplier whose
    # holders are the supplier's rings.
    by_holders: dict[tuple[str, frozenset[str]], int] = defaultdict(int)
    for (link_type, _), entities in supplier_holders(data_20k_suppliers).items():
        by_holders[(link_type, frozenset(entities))] += 1
    for _, group in suppliers:
        members = frozenset(group["entity_id_l"]) | frozenset(group["entity_id_r"])
        assert by_holders[(group["link_type"].iloc[0], members)] >= 1, group


def test_zero_supplier_share_gives_no_related_rings() -> None:
    data = generate(accounts=3_000, seed=4)  # the default share is 0
    assert data.links.empty
    assert list(data.links.columns) == ["entity_id_l", "entity_id_r", "link_type", "supplier_id"]


def test_households_share_home_but_are_different_entities(data_20k: SyntheticData) -> None:
    entities = data_20k.entities.dropna(subset=["household_id"])
    assert len(entities) >= 100
    household_of = dict(zip(entities[cols.ENTITY_ID], entities["household_id"], strict=True))
    accounts = valid_accounts(data_20k)
    accounts = accounts.assign(entity=accounts[cols.ACCOUNT_ID].map(entity_of(data_20k)))
    accounts = accounts.assign(household=accounts["entity"].map(household_of))
    accounts = accounts.dropna(subset=["household"])
    accounts = accounts.assign(
        address_key=accounts[cols.ADDRESS].map(address_key, na_action="ignore"),
        ip=accounts[cols.REGISTRATION_IP].str.strip().str.lower(),
        id_key=accounts[cols.ID_NUMBER].map(id_key, na_action="ignore"),
    )
    for _, members in accounts.groupby("household"):
        assert members["entity"].nunique() == len(members) >= 2
        assert members["address_key"].dropna().nunique() <= 1
        assert members["ip"].dropna().nunique() <= 1
        assert members["id_key"].dropna().is_unique
        assert members[cols.PHONE].dropna().map(phone_key).is_unique


def test_signals_are_far_more_frequent_on_rings(data_20k: SyntheticData) -> None:
    kind = data_20k.entities.set_index(cols.ENTITY_ID)["kind"]
    signals = data_20k.enforcement_signals
    signals = signals[signals[cols.ACCOUNT_ID].isin(data_20k.truth[cols.ACCOUNT_ID])]
    signal_kind = signals[cols.ACCOUNT_ID].map(entity_of(data_20k)).map(kind)
    ring_rate = (signal_kind == "ring").sum() / 5_000
    honest_rate = (signal_kind != "ring").sum() / 15_000
    assert ring_rate > 5 * honest_rate
    ring_types = set(signals.loc[signal_kind == "ring", cols.SIGNAL_TYPE])
    assert {"rights_holder_complaint", "test_buy_counterfeit", "listing_takedown"} <= ring_types


# --------------------------------------------------------------------------------------------
# Realistic, valid values
# --------------------------------------------------------------------------------------------


def test_identity_numbers_pass_stdnum(data_20k: SyntheticData) -> None:
    accounts = valid_accounts(data_20k).dropna(subset=[cols.ID_NUMBER])
    by_type = dict(tuple(accounts.groupby(cols.ID_TYPE)[cols.ID_NUMBER]))
    assert set(by_type) == {"CN_RIC", "CN_USCC", "PASSPORT", "OTHER"}
    assert all(ric.is_valid(id_key(v)) for v in by_type["CN_RIC"])
    assert all(uscc.is_valid(id_key(v)) for v in by_type["CN_USCC"])
    raw = by_type["CN_RIC"]
    assert raw.str.endswith("x").any() and raw.str.contains(r"\s").any()


def test_cards_pass_luhn_and_use_real_issuer_prefixes(data_20k: SyntheticData) -> None:
    pay = data_20k.payment_instruments
    cards = pay.loc[pay[cols.INSTRUMENT_TYPE] == "card", cols.INSTRUMENT_ID].dropna()
    digits = cards.str.replace(r"\D", "", regex=True)
    assert all(luhn.is_valid(d) for d in digits)
    assert digits.str.len().between(16, 19).all()
    assert digits.str.match(r"62|4|5").all()
    assert cards.str.contains(" ").any() and cards.str.contains("-").any()


def test_vectorised_check_digits_equal_stdnum() -> None:
    rng = np.random.default_rng(0)
    stems = ["".join(map(str, rng.integers(0, 10, n))) for n in rng.choice([15, 17, 18], 3000)]
    assert gen._luhn_check_digits(stems) == [luhn.calc_check_digit(s) for s in stems]
    alphabet = gen._USCC_ALPHABET
    stems = ["91" + "".join(alphabet[i] for i in rng.integers(0, 31, 15)) for _ in range(3000)]
    assert gen._uscc_check_digits(stems) == [uscc.calc_check_digit(s) for s in stems]


def test_phones_are_valid_chinese_mobiles_written_many_ways(data_20k: SyntheticData) -> None:
    phones = valid_accounts(data_20k)[cols.PHONE].dropna()
    for phone in phones:
        number = phonenumbers.parse("+86" + phone_key(phone))
        assert phonenumbers.is_valid_number(number), phone
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    assert phones.str.fullmatch(r"\+86 1\d\d-\d{4}-\d{4}").any()
    assert phones.str.fullmatch(r"0086 1\d{10}").any()
    assert phones.str.fullmatch(r"1\d{10}").any()
    assert phones.str.fullmatch(r"1\d\d \d{4} \d{4}").any()
    assert phones.str.fullmatch(r"[１-９][０-９]{10}").any()


def test_emails_domains_and_noise(data_20k: SyntheticData) -> None:
    emails = valid_accounts(data_20k)[cols.EMAIL].dropna()
    domains = set(emails.str.strip().str.lower().str.split("@").str[1])
    assert domains == set(gen.EMAIL_DOMAINS)
    assert emails.str.contains(r"[A-Z]").any()
    gmail = emails[emails.str.lower().str.endswith("@gmail.com")]
    assert gmail.str.contains(r"\+").any()


def test_names_addresses_and_shops_in_several_scripts(data_20k: SyntheticData) -> None:
    accounts = valid_accounts(data_20k)
    names = accounts[cols.LEGAL_NAME].dropna()
    assert names.str.fullmatch(r"[\u4e00-\u9fff]{2,4}").any()
    assert names.str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").any()
    assert names.str.fullmatch(r"[A-Z]+ [A-Z][a-z]+").any()
    assert names.str.contains("[Ａ-Ｚａ-ｚ]").any()
    addresses = accounts[cols.ADDRESS].dropna()
    assert addresses.str.contains("省").any() and addresses.str.contains(" Rd").any()
    assert addresses.str.contains("No.").any() and addresses.str.contains("号").any()
    shops = accounts[cols.SHOP_NAME].dropna()
    for script in (r"[\u4e00-\u9fff]", r"[\u30a0-\u30ff]", r"[\uac00-\ud7af]", r"[А-я]"):
        assert shops.str.contains(script).any(), script
    assert set(accounts[cols.COUNTRY].dropna()) == {"CN", "HK", "US"}
    assert set(accounts[cols.PLATFORM].dropna().str.lower()) == set(gen.PLATFORMS)


def test_every_rendering_of_an_address_has_one_key() -> None:
    """Han and Latin renderings with dropped suffixes and stray marks normalise alike, and
    different addresses do not (for every city, district and road of the vocabulary)."""
    rng = np.random.default_rng(3)
    keys_by_address: dict[tuple[int, ...], set[str]] = defaultdict(set)
    for c, city in enumerate(gen.CITIES):
        roads = city.roads or gen._CN_ROADS
        for d, r in itertools.product(range(len(city.districts)), range(len(roads))):
            k = int(rng.integers(0, 2))
            number, room = int(rng.integers(1, 1000)), int(rng.choice([0, 1203]))
            address = (c, d, r, k, number, room)
            keys_by_address[address].add(
                address_key(gen._render_address(city, d, r, k, number, room, False, 0))
            )
            for bits in rng.integers(0, 1 << 14, size=3).tolist():
                keys_by_address[address].add(
                    address_key(gen._render_address(city, d, r, k, number, room, True, bits))
                )
    assert all(len(keys) == 1 for keys in keys_by_address.values())
    distinct = {next(iter(keys)) for keys in keys_by_address.values()}
    # Road kinds 路/街 share a key by design (both are generic words).
    assert len(distinct) >= 0.45 * len(keys_by_address)


def test_zero_hubs_give_no_hub_values() -> None:
    hubs = hub_sizes(generate(accounts=5_000, seed=4, hub_scale=0.0, ring_share=0.0))
    for kind, sizes in hubs.items():
        assert sizes.empty or sizes.max() <= (3 if kind != "name" else 20), kind


def test_zero_noise_gives_canonical_values() -> None:
    data = generate(accounts=1_000, seed=4, noise=0.0, malformed_rate=0.0)
    accounts = data.accounts
    assert accounts.drop(columns=[cols.SHOP_NAME]).notna().all().all()
    assert accounts[cols.PHONE].str.fullmatch(r"1\d{10}").all()
    assert (accounts[cols.EMAIL] == accounts[cols.EMAIL].str.lower()).all()
    cn = accounts[accounts[cols.COUNTRY] == "CN"]
    assert cn[cols.LEGAL_NAME].str.fullmatch(r"[\u4e00-\u9fff]+").all()
    assert cn[cols.ADDRESS].str.fullmatch(r"[\u4e00-\u9fff0-9]+").all()
    assert data.malformed.empty
    cards = data.payment_instruments
    cards = cards.loc[cards[cols.INSTRUMENT_TYPE] == "card", cols.INSTRUMENT_ID]
    assert cards.str.fullmatch(r"\d{16,19}").all()


# --------------------------------------------------------------------------------------------
# Malformed rows
# --------------------------------------------------------------------------------------------


def test_malformed_rows_of_every_kind_are_an_exact_listed_subset(small: SyntheticData) -> None:
    listed = small.malformed[~small.malformed["csv_only"]]
    kinds = {(d, k) for d, k in zip(listed["dataset"], listed["kind"], strict=True)}
    assert kinds == {(d, k) for d, entries in gen._MALFORMED_KINDS.items() for k, _ in entries}
    valid_ids = set(small.truth[cols.ACCOUNT_ID])
    entity = entity_of(small)
    for name in cols.INPUT_DATASETS:
        frame = getattr(small, name)
        mine = listed[listed["dataset"] == name]
        n_valid = len(frame) - len(mine)
        assert len(mine) == round(0.01 * n_valid)  # exact: rate x valid rows
        bad = frame.iloc[mine["row"].to_numpy()]
        good = frame.drop(index=mine["row"].to_numpy())
        for (_, row), kind in zip(bad.iterrows(), mine["kind"], strict=True):
            value = row[cols.ACCOUNT_ID]
            if kind == "empty_account_id":
                assert value == ""
            elif kind == "null_account_id":
                assert value is None
            elif kind == "duplicate_account_id":
                twins = frame[frame[cols.ACCOUNT_ID] == value]
                assert len(twins) == 2 and value in entity
            elif kind == "orphan_account_id":
                assert isinstance(value, str) and value and value not in valid_ids
            elif kind == "null_instrument_id":
                assert row[cols.INSTRUMENT_ID] is None
            elif kind == "invalid_instrument_type":
                assert row[cols.INSTRUMENT_TYPE] not in cols.INSTRUMENT_TYPES
            elif kind == "invalid_role":
                assert row[cols.ROLE] not in cols.LOGISTICS_ROLES
            elif kind == "negative_shipment_count":
                assert row[cols.SHIPMENT_COUNT] < 0
            elif kind == "negative_signal_count":
                assert row[cols.SIGNAL_COUNT] < 0
            else:
                assert kind == "invalid_signal_type"
                assert row[cols.SIGNAL_TYPE] not in cols.SIGNAL_TYPES
        # Every row not listed is valid.
        assert good[cols.ACCOUNT_ID].isin(valid_ids).all()
        if name == cols.ACCOUNTS:
            assert good[cols.ACCOUNT_ID].is_unique
        if name == cols.PAYMENT_INSTRUMENTS:
            assert good[cols.INSTRUMENT_TYPE].isin(cols.INSTRUMENT_TYPES).all()
            assert good[cols.INSTRUMENT_ID].notna().all()
        if name == cols.LOGISTICS:
            assert good[cols.ROLE].isin(cols.LOGISTICS_ROLES).all()
            assert (good[cols.SHIPMENT_COUNT] >= 0).all()
        if name == cols.ENFORCEMENT_SIGNALS:
            assert good[cols.SIGNAL_TYPE].isin(cols.SIGNAL_TYPES).all()
            assert (good[cols.SIGNAL_COUNT] >= 1).all()


def test_no_malformed_rows_at_rate_zero() -> None:
    data = generate(accounts=700, seed=2, malformed_rate=0.0)
    assert data.malformed.empty
    assert data.accounts[cols.ACCOUNT_ID].is_unique
    assert set(data.accounts[cols.ACCOUNT_ID]) == set(data.truth[cols.ACCOUNT_ID])
