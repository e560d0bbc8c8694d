"""Settings of the standardisation step."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StandardiseConfig:
    """How raw identity, payment and logistics attributes are standardised.

    `default_phone_region` is used for phone numbers without a country prefix when the row has
    no `country` (ISO 3166-1 alpha-2).
    """

    default_phone_region: str = "CN"

    def problems(self) -> list[str]:
        if len(self.default_phone_region) != 2 or not self.default_phone_region.isalpha():
            return [
                "standardise.default_phone_region: expected an ISO 3166-1 alpha-2 code, "
                f"got {self.default_phone_region!r}"
            ]
        return []
