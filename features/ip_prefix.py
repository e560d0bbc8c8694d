"""Network prefixes of registration IPs, natively in Spark.

Accounts behind one home router share an IPv4 /24 or an IPv6 /48 (the usual customer
allocation) more often than an address. All three functions parse the address with Spark
string functions: the text, half-width and trimmed, must be a whole IPv4 dotted quad (no
leading zeros) or an IPv6 address in any RFC 4291 form (`::` compression, a trailing dotted
quad, a `%zone` suffix), exactly what Python's `ipaddress` accepts.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.text import let, to_half_width

# Column names this module adds when callers follow its naming.
IP_VERSION = "ip_version"
IPV4_PREFIX24 = "ipv4_prefix24"
IPV6_PREFIX48 = "ipv6_prefix48"

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"
_HEX_GROUP = r"^[0-9a-f]{1,4}$"
_GROUPS = 8


def _clean(ip: Column) -> Column:
    return F.lower(F.trim(to_half_width(ip)))


def _ipv6_groups(ip: Column) -> Column:
    """The eight hex groups of an IPv6 address, leading zeros dropped; null when invalid."""
    # A zone id (`%eth0`) names a local interface; a stray `%` elsewhere fails the hex check.
    address = F.regexp_replace(_clean(ip), "%[^%]+$", "")
    return let(address, _groups_of_address)


def _split_groups(text: Column) -> Column:
    return F.when(text == F.lit(""), F.array().cast("array<string>")).otherwise(
        F.split(text, ":", -1)
    )


def _groups_of_address(address: Column) -> Column:
    return let(
        F.split(address, "::", -1),
        lambda halves: F.when(
            address.contains(":") & (F.size(halves) <= 2),
            let(
                _split_groups(F.element_at(halves, 1)),
                lambda head: let(
                    F.when(F.size(halves) == 2, _split_groups(F.element_at(halves, 2))).otherwise(
                        F.array().cast("array<string>")
                    ),
                    lambda tail: _expand_groups(head, tail, F.size(halves) == 2),
                ),
            ),
        ),
    )


def _expand_groups(head: Column, tail: Column, compressed: Column) -> Column:
    return let(
        F.concat(head, tail),
        lambda written: let(
            # A trailing dotted quad stands for the last two groups (`try_`: `::` writes none).
            F.coalesce(F.try_element_at(written, F.lit(-1)).rlike(_IPV4), F.lit(False)),
            lambda ends_in_ipv4: let(
                F.when(ends_in_ipv4, F.slice(written, 1, F.size(written) - 1)).otherwise(written),
                lambda hex_part: let(
                    F.size(hex_part) + F.when(ends_in_ipv4, 2).otherwise(0),
                    lambda count: _canonical_groups(
                        head, tail, written, hex_part, count, compressed
                    ),
                ),
            ),
        ),
    )


def _canonical_groups(
    head: Column, tail: Column, written: Column, hex_part: Column, count: Column, compressed: Column
) -> Column:
    valid = F.forall(hex_part, lambda group: group.rlike(_HEX_GROUP)) & F.when(
        compressed, count <= _GROUPS - 1
    ).otherwise(count == _GROUPS)
    zeros = F.array_repeat(F.lit("0"), F.lit(_GROUPS) - count)
    expanded = F.when(compressed, F.concat(head, zeros, tail)).otherwise(written)
    canonical = F.transform(expanded, lambda group: F.regexp_replace(group, "^0+(?=.)", ""))
    return F.when(valid, canonical)


def ip_version(ip: Column) -> Column:
    """4 or 6 (int) for a valid IPv4 or IPv6 address; null for null, empty or anything else."""
    cleaned = _clean(ip)
    return (
        F.when(cleaned.rlike(_IPV4), F.lit(4))
        .when(_ipv6_groups(ip).isNotNull(), F.lit(6))
        .otherwise(F.lit(None).cast("int"))
    )


def ipv4_prefix24(ip: Column) -> Column:
    """The /24 network of an IPv4 address as CIDR text (`10.1.2.0/24`); null for null, empty,
    IPv6 (IPv4-mapped IPv6 included) or anything that is not a dotted quad.

    >>> accounts.select(ipv4_prefix24(F.col("registration_ip")))  # doctest: +SKIP
    """
    cleaned = _clean(ip)
    return F.when(
        cleaned.rlike(_IPV4),
        F.concat(F.substring_index(cleaned, ".", 3), F.lit(".0/24")),
    )


def ipv6_prefix48(ip: Column) -> Column:
    """The /48 network of an IPv6 address in RFC 5952 text (`2001:db8:1::/48`), equal to
    `str(ipaddress.ip_network(f"{ip}/48", strict=False))`; null for null, empty, IPv4 or
    anything that is not an IPv6 address. `::` compression is expanded before the first three
    groups are taken, so `2001:db8::1` gives `2001:db8::/48`.
    """
    return let(F.slice(_ipv6_groups(ip), 1, 3), _prefix48_text)


def _prefix48_text(first_three: Column) -> Column:
    # The last five groups are zero, so RFC 5952 compresses them together with any zero groups
    # that end the first three: keep the groups up to the last non-zero one, then `::`.
    last_nonzero = F.aggregate(
        F.sequence(F.lit(1), F.lit(3)),
        F.lit(0),
        lambda acc, position: F.when(
            F.element_at(first_three, position) != F.lit("0"), position
        ).otherwise(acc),
    )
    prefix = F.array_join(F.slice(first_three, 1, F.greatest(last_nonzero, F.lit(1))), ":")
    text = F.when(last_nonzero == 0, F.lit("::/48")).otherwise(F.concat(prefix, F.lit("::/48")))
    return F.when(first_three.isNotNull(), text)
