"""SP-API regions: default endpoints and the marketplaces each region serves.

Source: developer-docs.amazon.com/sp-api/docs/sp-api-endpoints and .../marketplace-ids.
"""

from __future__ import annotations

from dataclasses import dataclass

LWA_ENDPOINT = "https://api.amazon.com/auth/o2/token"


@dataclass(frozen=True)
class Region:
    """One SP-API region."""

    code: str
    endpoint: str
    aws_region: str
    #: marketplace id -> country code
    marketplaces: dict[str, str]


REGIONS: dict[str, Region] = {
    "na": Region(
        "na",
        "https://sellingpartnerapi-na.amazon.com",
        "us-east-1",
        {
            "ATVPDKIKX0DER": "US",
            "A2EUQ1WTGCTBG2": "CA",
            "A1AM78C64UM0Y8": "MX",
            "A2Q3Y263D00KWC": "BR",
        },
    ),
    "eu": Region(
        "eu",
        "https://sellingpartnerapi-eu.amazon.com",
        "eu-west-1",
        {
            "A1F83G8C2ARO7P": "UK",
            "A1PA6795UKMFR9": "DE",
            "A13V1IB3VIYZZH": "FR",
            "APJ6JRA9NG5V4": "IT",
            "A1RKKUPIHCS9HS": "ES",
            "A1805IZSGTT6HS": "NL",
            "A2NODRKZP88ZB9": "SE",
            "A1C3SOZRARQ6R3": "PL",
            "A33AVAJ2PDY3EV": "TR",
            "A2VIGQ35RCS4UG": "AE",
            "A17E79C6D8DWNP": "SA",
            "A21TJRUUN4KGV": "IN",
            "ARBP9OOSHTCHU": "EG",
            "AMEN7PMS3EDWL": "BE",
            "A28R8C7NBKEWEA": "IE",
            "AE08WJ6YKNBMC": "ZA",
        },
    ),
    "fe": Region(
        "fe",
        "https://sellingpartnerapi-fe.amazon.com",
        "us-west-2",
        {"A1VC38T7YXB528": "JP", "A39IBJ37TRP1C6": "AU", "A19VAU5U5O7RUS": "SG"},
    ),
}


def get_region(code: str) -> Region:
    """Return the region for ``na``/``eu``/``fe`` (case-insensitive); ``KeyError`` names the valid codes."""
    try:
        return REGIONS[code.strip().lower()]
    except (KeyError, AttributeError):
        raise KeyError(f"unknown SP-API region {code!r}; expected one of {', '.join(REGIONS)}") from None


def region_of_marketplace(marketplace_id: str) -> str | None:
    """Region code serving ``marketplace_id``, or ``None`` if unknown."""
    for region in REGIONS.values():
        if marketplace_id in region.marketplaces:
            return region.code
    return None
