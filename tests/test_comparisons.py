"""Comparison levels per pair, term frequencies, and the tf effect on a hub value."""

from __future__ import annotations

import math
from datetime import date

import pytest

from features import columns as c
from resolution.comparisons import LOGISTICS_TOKENS, VALUES, compare_pairs
from resolution.config import ComparisonSpec, ModelConfig
from resolution.fellegi_sunter import FellegiSunterModel, score_pairs

PROFILE_SCHEMA = (
    "account_id string, name_key string, name_tokens array<string>, phone_e164 string, "
    "birth_date date, id_number_fuzzy array<string>, ip_prefix string, "
    "address_tokens array<string>, "
    "values map<string, array<struct<value_key:string, holders:bigint>>>, "
    "logistics_tokens array<array<string>>"
)


def _profile(account_id: str, **fields):
    row = {
        "account_id": account_id,
        "name_key": None,
        "name_tokens": None,
        "phone_e164": None,
        "birth_date": None,
        "id_number_fuzzy": None,
        "ip_prefix": None,
        "address_tokens": None,
        VALUES: {},
        LOGISTICS_TOKENS: None,
    }
    row.update(fields)
    return row


def _levels(spark, profiles, pairs, specs, *, accounts=1000, hub_cap=None):
    frame = spark.createDataFrame([_profile(**p) for p in profiles], PROFILE_SCHEMA)
    pair_frame = spark.createDataFrame(pairs, "account_id_l string, account_id_r string")
    holders = {spec.name: accounts for spec in specs}
    rows = compare_pairs(pair_frame, frame, specs, holders=holders, hub_cap=hub_cap).collect()
    return {(r[c.ACCOUNT_ID_L], r[c.ACCOUNT_ID_R]): r.asDict() for r in rows}


def test_name_levels_exact_fuzzy_different_and_null(spark):
    spec = ComparisonSpec(name="name", kind="name", attributes=("name",), thresholds=(0.7, 0.88))
    zhang = {"name_key": "wei zhang", "name_tokens": ["wei", "zhang"]}
    profiles = [
        {"account_id": "a", **zhang, VALUES: {"name": [("wei zhang", 40)]}},
        {"account_id": "b", **zhang, VALUES: {"name": [("wei zhang", 40)]}},
        # one letter off: Levenshtein similarity 8/9
        {"account_id": "c", "name_key": "wei zhung", "name_tokens": ["wei", "zhung"]},
        {"account_id": "d", "name_key": "li na", "name_tokens": ["li", "na"]},
        {"account_id": "e"},
    ]
    levels = _levels(
        spark, profiles, [("a", "b"), ("a", "c"), ("a", "d"), ("a", "e")], [spec], accounts=2000
    )
    assert levels[("a", "b")]["gamma_name"] == 3
    assert levels[("a", "b")]["tf_name"] == pytest.approx(40 / 2000)
    assert levels[("a", "c")]["gamma_name"] == 2
    assert levels[("a", "c")]["tf_name"] is None
    assert levels[("a", "d")]["gamma_name"] == 0
    assert levels[("a", "e")]["gamma_name"] == -1


def test_set_comparison_uses_the_rarest_shared_value(spark):
    spec = ComparisonSpec(
        name="payment_instrument", kind="exact", attributes=("card", "bank_account")
    )
    profiles = [
        {"account_id": "a", VALUES: {"card": [("k1", 2), ("k2", 500)], "bank_account": [("b", 9)]}},
        {"account_id": "b", VALUES: {"card": [("k2", 500)], "bank_account": [("b", 9)]}},
        {"account_id": "c", VALUES: {"card": [("k3", 1)]}},
        {"account_id": "d", VALUES: {"wallet": [("w", 3)]}},
    ]
    levels = _levels(spark, profiles, [("a", "b"), ("a", "c"), ("a", "d")], [spec])
    assert levels[("a", "b")]["gamma_payment_instrument"] == 1
    # k2 (500 holders) and b (9 holders) are shared: the rarer one sets the tf
    assert levels[("a", "b")]["tf_payment_instrument"] == pytest.approx(9 / 1000)
    assert levels[("a", "c")]["gamma_payment_instrument"] == 0
    # d has no card and no bank account: no information
    assert levels[("a", "d")]["gamma_payment_instrument"] == -1


def test_one_edit_phone_network_and_address_levels(spark):
    specs = [
        ComparisonSpec(name="id_number", kind="identity", attributes=("id_number",)),
        ComparisonSpec(name="phone", kind="phone", attributes=("phone",)),
        ComparisonSpec(name="ip", kind="ip", attributes=("registration_ip",)),
        ComparisonSpec(
            name="address", kind="address", attributes=("registered_address",), thresholds=(0.6,)
        ),
        ComparisonSpec(
            name="logistics",
            kind="logistics_address",
            attributes=("return_address",),
            thresholds=(0.5,),
        ),
        ComparisonSpec(name="born", kind="exact", attributes=("birth_date",), tf_adjusted=False),
    ]
    a = {
        "account_id": "a",
        "id_number_fuzzy": ["h0", "h1", "h2"],
        "phone_e164": "+8613800138000",
        "ip_prefix": "10.1.2.0/24",
        "address_tokens": ["8", "keji", "nanshan", "shenzhen", "yuan"],
        LOGISTICS_TOKENS: [["1", "road", "x"], ["2", "lane", "y", "z"]],
        "birth_date": date(1990, 1, 1),
        VALUES: {"birth_date": [("1990-01-01", 3)], "id_number": [("i1", 1)]},
    }
    b = {
        "account_id": "b",
        "id_number_fuzzy": ["h2", "h9"],
        "phone_e164": "+8613800138001",
        "ip_prefix": "10.1.2.0/24",
        "address_tokens": ["8", "keji", "nanshan", "shenzhen"],
        LOGISTICS_TOKENS: [["2", "lane", "y"]],
        VALUES: {"birth_date": [("1990-01-01", 3)], "id_number": [("i2", 1)]},
    }
    levels = _levels(spark, [a, b], [("a", "b")], specs)[("a", "b")]
    assert levels["gamma_id_number"] == 1  # fuzzy hashes overlap, exact hashes differ
    assert levels["gamma_phone"] == 1
    assert levels["gamma_ip"] == 1
    assert levels["gamma_address"] == 1  # Jaccard 4/5
    assert levels["gamma_logistics"] == 1  # best pair 3/4
    assert levels["gamma_born"] == 1
    assert "tf_born" not in levels


def test_term_frequency_makes_a_hub_value_weigh_far_less(spark):
    """Two pairs agree exactly on a device: one on a device 2 accounts use, one on a device
    5,000 of 100,000 accounts use. The tf adjustment takes log2(5000 / 2) off the second."""
    spec = ComparisonSpec(name="device", kind="exact", attributes=("device",))
    profiles = [
        {"account_id": "a", VALUES: {"device": [("rare", 2)]}},
        {"account_id": "b", VALUES: {"device": [("rare", 2)]}},
        {"account_id": "c", VALUES: {"device": [("hub", 5000)]}},
        {"account_id": "d", VALUES: {"device": [("hub", 5000)]}},
    ]
    frame = spark.createDataFrame([_profile(**p) for p in profiles], PROFILE_SCHEMA)
    pairs = spark.createDataFrame(
        [("a", "b"), ("c", "d")], "account_id_l string, account_id_r string"
    )
    gammas = compare_pairs(pairs, frame, [spec], holders={"device": 100_000})
    model = FellegiSunterModel(
        comparisons=(spec.comparison(),),
        m={"device": (0.4, 0.6)},
        u={"device": (0.999, 0.001)},
        prior=0.1,
    )
    scored = {r[c.ACCOUNT_ID_L]: r for r in score_pairs(gammas, model).collect()}
    rare, hub = scored["a"], scored["c"]
    assert rare[c.MATCH_WEIGHT] - hub[c.MATCH_WEIGHT] == pytest.approx(math.log2(5000 / 2))
    # weight = log2 prior odds + log2(m_exact / tf)
    assert rare[c.MATCH_WEIGHT] == pytest.approx(math.log2(0.1 / 0.9) + math.log2(0.6 / 2e-5))
    assert rare[c.MATCH_PROBABILITY] > 0.999
    # log2(1/9) + log2(0.6 / 0.05) = 0.415: odds 4:3, far below a 0.9 threshold
    assert hub[c.MATCH_PROBABILITY] == pytest.approx(4 / 7)
    evidence = hub[c.EVIDENCE][0]
    assert evidence["level"] == "exact"
    assert evidence["tf_adjustment"] == pytest.approx(math.log2(0.001 / 0.05))


def test_model_config_reports_every_problem():
    config = ModelConfig(
        comparisons=(
            ComparisonSpec(name="x", kind="fuzzy", attributes=("nope",)),
            ComparisonSpec(name="x", kind="phone", attributes=("phone",), thresholds=(0.5,)),
            ComparisonSpec(name="n", kind="name", attributes=("name",), thresholds=(0.9, 0.7)),
            ComparisonSpec(
                name="b", kind="exact", attributes=("birth_date",), implied_by=("b", "z")
            ),
        ),
        threshold=1.0,
    )
    problems = "\n".join(config.problems())
    assert "names repeat" in problems
    assert "kind: expected one of" in problems
    assert "unknown ['nope']" in problems
    assert "kind 'phone' takes no thresholds" in problems
    assert "must increase strictly" in problems
    assert "model.threshold" in problems
    assert "model.comparisons.b.implied_by: ['b', 'z'] are not other comparisons" in problems


def test_frequency_classes_split_the_exact_level_by_holder_count(spark):
    spec = ComparisonSpec(
        name="device",
        kind="exact",
        attributes=("device",),
        tf_adjusted=False,
        frequency_classes=(2, 5, 20, 100),
    )
    assert spec.comparison().levels == (
        "different",
        "exact h>100",
        "exact h<=100",
        "exact h<=20",
        "exact h<=5",
        "exact h<=2",
    )
    holders = {"p": 2, "q": 5, "r": 6, "s": 100, "t": 5000}
    profiles = [
        {"account_id": f"{v}{side}", VALUES: {"device": [(v, n)]}}
        for v, n in holders.items()
        for side in "lr"
    ]
    profiles.append({"account_id": "x", VALUES: {"device": [("other", 1)]}})
    pairs = [(f"{v}l", f"{v}r") for v in holders] + [("pl", "x")]
    levels = _levels(spark, profiles, pairs, [spec])
    got = {left[0]: levels[(left, right)]["gamma_device"] for left, right in pairs[:-1]}
    # private value top, then one class down per bound passed; the hub is the lowest exact level
    assert got == {"p": 5, "q": 4, "r": 3, "s": 2, "t": 1}
    assert levels[("pl", "x")]["gamma_device"] == 0
    assert "tf_device" not in levels[("pl", "x")]


def test_frequency_classes_need_increasing_bounds_and_no_tf():
    bad = ComparisonSpec("device", "exact", ("device",), frequency_classes=(5, 2))
    problems = " ".join(bad.problems())
    assert "strictly increasing, got [5, 2]" in problems
    assert "set tf_adjusted: false" in problems
    assert not ComparisonSpec(
        "device", "exact", ("device",), tf_adjusted=False, frequency_classes=(2, 5)
    ).problems()


def test_a_pair_sharing_only_hub_values_gets_no_information(spark):
    ip = ComparisonSpec(
        name="registration_ip",
        kind="ip",
        attributes=("registration_ip",),
        tf_adjusted=False,
        frequency_classes=(2, 5, 20, 100),
    )
    name = ComparisonSpec(name="name", kind="name", attributes=("name",), thresholds=(0.7,))
    nat = ("10.0.0.1", 5000)
    profiles = [
        # one carrier NAT address (a hub): same /24 and same value, nothing else
        {"account_id": "a", "ip_prefix": "10.0.0", VALUES: {"registration_ip": [nat]}},
        {"account_id": "b", "ip_prefix": "10.0.0", VALUES: {"registration_ip": [nat]}},
        # the NAT address and a private one: the private value decides the level
        {
            "account_id": "c",
            "ip_prefix": "10.0.0",
            VALUES: {"registration_ip": [nat, ("1.2.3.4", 2)]},
        },
        {
            "account_id": "d",
            "ip_prefix": "1.2.3",
            VALUES: {"registration_ip": [nat, ("1.2.3.4", 2)]},
        },
        # a name held by 300 accounts: identical keys, yet no information
        {
            "account_id": "e",
            "name_key": "wangfang",
            "name_tokens": ["wang", "fang"],
            VALUES: {"name": [("wangfang", 300)]},
        },
        {
            "account_id": "f",
            "name_key": "wangfang",
            "name_tokens": ["wang", "fang"],
            VALUES: {"name": [("wangfang", 300)]},
        },
    ]
    pairs = [("a", "b"), ("c", "d"), ("e", "f")]

    def levels(hub_cap):
        found = _levels(spark, profiles, pairs, [ip, name], hub_cap=hub_cap)
        return {pair: (r["gamma_registration_ip"], r["gamma_name"]) for pair, r in found.items()}

    top_ip, top_name = ip.comparison().top_level, name.comparison().top_level
    # without a cap the hubs are agreement like any other value (the lowest exact class)
    assert levels(None) == {
        ("a", "b"): (2, -1),
        ("c", "d"): (top_ip, -1),
        ("e", "f"): (-1, top_name),
    }
    assert levels(100) == {("a", "b"): (-1, -1), ("c", "d"): (top_ip, -1), ("e", "f"): (-1, -1)}


def test_implied_comparison_gives_no_information_where_the_implying_one_agrees(spark):
    identity = ComparisonSpec(
        name="id_number", kind="identity", attributes=("id_number",), tf_adjusted=False
    )
    birth = ComparisonSpec(
        name="birth_date",
        kind="exact",
        attributes=("birth_date",),
        tf_adjusted=False,
        implied_by=("id_number",),
    )
    born = date(1990, 5, 17)
    profiles = [
        # id numbers one edit apart (their symmetric-deletion hashes overlap), one birth date
        {
            "account_id": "a",
            "id_number_fuzzy": ["h1", "h2"],
            "birth_date": born,
            VALUES: {"id_number": [("ida", 1)], "birth_date": [("1990-05-17", 3)]},
        },
        {
            "account_id": "b",
            "id_number_fuzzy": ["h2", "h3"],
            "birth_date": born,
            VALUES: {"id_number": [("idb", 1)], "birth_date": [("1990-05-17", 3)]},
        },
        # different id numbers, same birth date: the birth date still speaks
        {
            "account_id": "c",
            "id_number_fuzzy": ["h7"],
            "birth_date": born,
            VALUES: {"id_number": [("idc", 1)], "birth_date": [("1990-05-17", 3)]},
        },
    ]
    pairs = [("a", "b"), ("a", "c")]
    levels = _levels(spark, profiles, pairs, [identity, birth])
    assert levels[("a", "b")]["gamma_id_number"] == 1  # one edit
    assert levels[("a", "b")]["gamma_birth_date"] == -1  # contained in the id number
    assert levels[("a", "c")]["gamma_id_number"] == 0
    assert levels[("a", "c")]["gamma_birth_date"] == birth.comparison().top_level
    free = ComparisonSpec(
        name="birth_date", kind="exact", attributes=("birth_date",), tf_adjusted=False
    )
    assert _levels(spark, profiles, pairs, [identity, free])[("a", "b")]["gamma_birth_date"] == 1
