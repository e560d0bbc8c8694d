"""Registration IPs and device fingerprints."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from features.text import blank_to_null, to_half_width

_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"^({_OCTET}\.){{3}}{_OCTET}$"
_IPV6 = r"^[0-9a-f:]*:[0-9a-f:.]*$"


def ip_norm(raw: Column) -> Column:
    """A trimmed, lower-case IPv4 or IPv6 address; null when it is neither."""
    ip = F.lower(F.trim(to_half_width(raw)))
    return F.when(ip.rlike(_IPV4) | ip.rlike(_IPV6), ip)


def device_norm(raw: Column) -> Column:
    """Device fingerprint: lower-case letters and digits only; null when nothing is left."""
    return blank_to_null(F.regexp_replace(F.lower(to_half_width(raw)), r"[^0-9a-z]", ""))
