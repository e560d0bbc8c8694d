"""Email addresses to a canonical form, natively in Spark."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.text import to_half_width

# Providers that deliver `a.b+tag@` to `ab@`: dots and plus tags carry no identity there.
_DOT_BLIND = ("gmail.com", "googlemail.com")
_PLUS_TAGGED = ("gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com")
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def email_canonical(raw: Column) -> Column:
    """Lower-cased, trimmed, half-width address with provider rules applied; null if malformed.

    For gmail.com (and googlemail.com, mapped to gmail.com) dots in the local part are dropped;
    for providers that honour plus addressing the `+tag` is dropped. An address without exactly
    one `@` and a dotted domain gives null.
    """
    email = F.lower(F.regexp_replace(to_half_width(raw), r"\s+", ""))
    well_formed = email.rlike(r"^[^@]+@[^@]+\.[^@]+$")
    local = F.substring_index(email, "@", 1)
    domain = F.substring_index(email, "@", -1)
    for alias, target in _DOMAIN_ALIASES.items():
        domain = F.when(domain == F.lit(alias), F.lit(target)).otherwise(domain)
    local = F.when(domain.isin(*_PLUS_TAGGED), F.substring_index(local, "+", 1)).otherwise(local)
    local = F.when(domain.isin(*_DOT_BLIND), F.regexp_replace(local, r"\.", "")).otherwise(local)
    return F.when(well_formed & (local != F.lit("")), F.concat_ws("@", local, domain))
