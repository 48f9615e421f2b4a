"""Static reference data for the sandbox world: regions, marketplaces, carriers, fake people.

Everything personal here is obviously fake (``Sandbox Lane``, ``555-01xx`` phone numbers,
anonymised ``@marketplace.amazon.*`` e-mails); only the marketplace ids are real.
"""

from __future__ import annotations

from decimal import Decimal

#: region -> seller id and marketplaces ``{marketplace_id: (name, currency, country)}``.
REGIONS: dict[str, dict] = {
    "na": {
        "seller_id": "A1SANDBOXSELLERNA",
        "marketplaces": {
            "ATVPDKIKX0DER": ("Amazon.com", "USD", "US"),
            "A2EUQ1WTGCTBG2": ("Amazon.ca", "CAD", "CA"),
            "A1AM78C64UM0Y8": ("Amazon.com.mx", "MXN", "MX"),
        },
    },
    "eu": {
        "seller_id": "A1SANDBOXSELLEREU",
        "marketplaces": {
            "A1F83G8C2ARO7P": ("Amazon.co.uk", "GBP", "GB"),
            "A1PA6795UKMFR9": ("Amazon.de", "EUR", "DE"),
            "A13V1IB3VIYZZH": ("Amazon.fr", "EUR", "FR"),
            "APJ6JRA9NG5V4": ("Amazon.it", "EUR", "IT"),
            "A1RKKUPIHCS9HS": ("Amazon.es", "EUR", "ES"),
        },
    },
    "fe": {
        "seller_id": "A1SANDBOXSELLERFE",
        "marketplaces": {
            "A1VC38T7YXB528": ("Amazon.co.jp", "JPY", "JP"),
            "A39IBJ37TRP1C6": ("Amazon.com.au", "AUD", "AU"),
            "A19VAU5U5O7RUS": ("Amazon.sg", "SGD", "SG"),
        },
    },
}

#: Share of a region's orders per marketplace (same order as REGIONS).
MARKETPLACE_WEIGHTS: dict[str, tuple[int, ...]] = {
    "na": (80, 12, 8),
    "eu": (35, 35, 12, 10, 8),
    "fe": (70, 20, 10),
}

#: Three-digit order id prefixes per country (Amazon's ids start with a site-specific block).
ORDER_ID_PREFIXES: dict[str, tuple[str, ...]] = {
    "US": ("111", "112", "113", "114"),
    "CA": ("701", "702"),
    "MX": ("701", "702"),
    "GB": ("202", "203", "204", "205", "206"),
    "DE": ("302", "303", "304", "305", "306"),
    "FR": ("402", "403", "404", "405", "406"),
    "IT": ("402", "403", "404", "405", "406"),
    "ES": ("402", "403", "404", "405", "406"),
    "JP": ("249", "250", "503"),
    "AU": ("249", "250", "503"),
    "SG": ("249", "250", "503"),
}

#: Price multiplier from a USD catalogue price, decimal places, and a tax rate per country.
CURRENCY_FACTOR: dict[str, Decimal] = {
    "USD": Decimal(1),
    "CAD": Decimal("1.35"),
    "MXN": Decimal(17),
    "GBP": Decimal("0.79"),
    "EUR": Decimal("0.92"),
    "JPY": Decimal(150),
    "AUD": Decimal("1.52"),
    "SGD": Decimal("1.34"),
}
CURRENCY_DECIMALS: dict[str, int] = {"JPY": 0}
TAX_RATE: dict[str, Decimal] = {
    "US": Decimal("0.0725"),
    "CA": Decimal("0.13"),
    "MX": Decimal("0.16"),
    "GB": Decimal("0.20"),
    "DE": Decimal("0.19"),
    "FR": Decimal("0.20"),
    "IT": Decimal("0.22"),
    "ES": Decimal("0.21"),
    "JP": Decimal("0.10"),
    "AU": Decimal("0.10"),
    "SG": Decimal("0.09"),
}

#: Country -> (e-mail domain, phone prefix, cities as (city, state/region, postal code format)).
#: Postal formats: ``#`` a digit, ``A`` an upper-case letter.
COUNTRIES: dict[str, tuple[str, str, tuple[tuple[str, str, str], ...]]] = {
    "US": (
        "marketplace.amazon.com",
        "+1 555-01",
        (
            ("Seattle", "WA", "981##"),
            ("Austin", "TX", "787##"),
            ("Columbus", "OH", "432##"),
            ("Denver", "CO", "802##"),
            ("Portland", "OR", "972##"),
            ("Raleigh", "NC", "276##"),
        ),
    ),
    "CA": (
        "marketplace.amazon.ca",
        "+1 555-01",
        (("Toronto", "ON", "M5V #A#"), ("Vancouver", "BC", "V6B #A#"), ("Calgary", "AB", "T2P #A#")),
    ),
    "MX": (
        "marketplace.amazon.com.mx",
        "+52 55 5555 01",
        (
            ("Ciudad de Mexico", "CDMX", "06###"),
            ("Guadalajara", "JAL", "44###"),
            ("Monterrey", "NL", "64###"),
        ),
    ),
    "GB": (
        "marketplace.amazon.co.uk",
        "+44 7700 9000",
        (
            ("Manchester", "England", "M1 #AA"),
            ("Leeds", "England", "LS1 #AA"),
            ("Glasgow", "Scotland", "G1 #AA"),
        ),
    ),
    "DE": (
        "marketplace.amazon.de",
        "+49 30 5555 01",
        (("Berlin", "Berlin", "10###"), ("Hamburg", "Hamburg", "20###"), ("Koeln", "NRW", "50###")),
    ),
    "FR": (
        "marketplace.amazon.fr",
        "+33 1 55 55 01",
        (
            ("Paris", "Ile-de-France", "75###"),
            ("Lyon", "Auvergne-Rhone-Alpes", "69###"),
            ("Lille", "Hauts-de-France", "59###"),
        ),
    ),
    "IT": (
        "marketplace.amazon.it",
        "+39 02 5555 01",
        (("Milano", "MI", "20###"), ("Roma", "RM", "00###"), ("Torino", "TO", "10###")),
    ),
    "ES": (
        "marketplace.amazon.es",
        "+34 91 555 01",
        (
            ("Madrid", "Madrid", "28###"),
            ("Barcelona", "Barcelona", "08###"),
            ("Valencia", "Valencia", "46###"),
        ),
    ),
    "JP": (
        "marketplace.amazon.co.jp",
        "+81 3 5555 01",
        (
            ("Shibuya-ku", "Tokyo", "150-####"),
            ("Kita-ku", "Osaka", "530-####"),
            ("Naka-ku", "Aichi", "460-####"),
        ),
    ),
    "AU": (
        "marketplace.amazon.com.au",
        "+61 2 5550 01",
        (("Sydney", "NSW", "2###"), ("Melbourne", "VIC", "3###"), ("Brisbane", "QLD", "4###")),
    ),
    "SG": (
        "marketplace.amazon.sg",
        "+65 6555 01",
        (("Singapore", "Singapore", "0#####"), ("Singapore", "Singapore", "5#####")),
    ),
}

STREETS = (
    "Sandbox Lane",
    "Example Street",
    "Test Avenue",
    "Placeholder Road",
    "Fixture Way",
    "Mock Boulevard",
)
FIRST_NAMES = (
    "Alex",
    "Sam",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Riley",
    "Jamie",
    "Avery",
    "Quinn",
    "Robin",
    "Charlie",
    "Dana",
    "Emery",
    "Finley",
    "Harper",
    "Kai",
    "Logan",
    "Noa",
    "Rowan",
)
LAST_NAMES = (
    "Example",
    "Sample",
    "Tester",
    "Sandbox",
    "Fixture",
    "Mockford",
    "Placeholder",
    "Dummy",
    "Fakeley",
    "Specimen",
    "Demo",
    "Trial",
)
COMPANIES = ("Example Industries", "Sample Trading Co", "Sandbox Supplies", "Fixture Works", "Demo Corp")

#: Country -> carriers as (carrier, shipping service, tracking-number format); ``#`` digit, ``A`` letter.
CARRIERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "US": (
        ("UPS", "UPS Ground", "1Z999AA1##########"),
        ("USPS", "USPS Ground Advantage", "9400####################"),
        ("FedEx", "FedEx Home Delivery", "############"),
    ),
    "CA": (
        ("Canada Post", "Expedited Parcel", "################"),
        ("Purolator", "Purolator Ground", "############"),
    ),
    "MX": (("Estafeta", "Estafeta Terrestre", "##########"), ("DHL", "DHL Express", "##########")),
    "GB": (
        ("Royal Mail", "Royal Mail Tracked 48", "AA########GB"),
        ("DPD", "DPD Next Day", "##############"),
    ),
    "DE": (("DHL", "DHL Paket", "############"), ("Hermes", "Hermes Paket", "H##################")),
    "FR": (("Colissimo", "Colissimo Domicile", "#A##########"), ("Chronopost", "Chrono 13", "AA#########FR")),
    "IT": (
        ("Poste Italiane", "Poste Delivery Business", "AA#########IT"),
        ("BRT", "BRT Express", "##############"),
    ),
    "ES": (("Correos", "Paq Estandar", "PQ###A##########"), ("SEUR", "SEUR 24", "##############")),
    "JP": (
        ("Yamato Transport", "Takkyubin", "############"),
        ("Sagawa Express", "Hikyaku Express", "############"),
    ),
    "AU": (
        ("Australia Post", "Parcel Post", "AAA##########"),
        ("StarTrack", "StarTrack Premium", "AAAA########"),
    ),
    "SG": (("SingPost", "SmartPac", "AA#########SG"), ("Ninja Van", "Ninja Standard", "NVSG##########")),
}

PRODUCT_ADJECTIVES = (
    "Stainless Steel",
    "Bamboo",
    "Ceramic",
    "Insulated",
    "Foldable",
    "Wireless",
    "Ergonomic",
    "Organic Cotton",
    "Cast Iron",
    "Silicone",
    "Recycled",
    "Compact",
)
PRODUCT_NOUNS = (
    ("Water Bottle", "WB"),
    ("Cutting Board", "CB"),
    ("Coffee Mug", "MUG"),
    ("Lunch Box", "LB"),
    ("Phone Stand", "PS"),
    ("Desk Lamp", "DL"),
    ("Tote Bag", "TB"),
    ("Skillet", "SK"),
    ("Spatula Set", "SP"),
    ("Storage Jar", "SJ"),
    ("Yoga Mat", "YM"),
    ("Plant Pot", "PP"),
    ("Notebook", "NB"),
    ("Travel Pillow", "TP"),
)
PRODUCT_VARIANTS = (
    ("Blue", "BLU"),
    ("Black", "BLK"),
    ("Green", "GRN"),
    ("Grey", "GRY"),
    ("Red", "RED"),
    ("White", "WHT"),
)

#: v2026 fulfillmentServiceLevel -> (v0 ShipmentServiceLevelCategory, v0 ShipServiceLevel, weight).
SERVICE_LEVELS: dict[str, tuple[str, str, int]] = {
    "STANDARD": ("Standard", "Std Dom", 70),
    "EXPEDITED": ("Expedited", "Exp Dom", 12),
    "SECOND_DAY": ("SecondDay", "SecondDay", 6),
    "NEXT_DAY": ("NextDay", "NextDay", 5),
    "FREE_ECONOMY": ("FreeEconomy", "FreeEconomy", 7),
}

BUYER_CANCEL_REASONS = (
    "Order Created In Error",
    "Found a better price",
    "Delivery date too late",
    "Changed mind about purchase",
    "Shipping cost too high",
)
#: v0 PaymentMethod -> v0 PaymentMethodDetails value (= v2026 paymentExecutions.paymentMethod; v2026
#: renders no payment section for "Other").
PAYMENT_DETAILS = {"COD": "CashOnDelivery", "CVS": "ConvenienceStore", "Other": "Standard"}
PROMOTION_IDS = ("SANDBOX-FREE-SHIP", "SANDBOX-10-OFF", "SANDBOX-BUY2-SAVE5", "SANDBOX-WELCOME")

# Enumerations of Amazon's models, shared by the world and the request validation.
FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
FULFILLED_BY = ("MERCHANT", "AMAZON")
INCLUDED_DATA: tuple[str, ...] = (
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
)
#: v0 OrderStatus -> v2026 fulfillment status (InvoiceUnconfirmed orders have shipped).
V0_TO_V2026: dict[str, str] = {
    "PendingAvailability": "PENDING_AVAILABILITY",
    "Pending": "PENDING",
    "Unshipped": "UNSHIPPED",
    "PartiallyShipped": "PARTIALLY_SHIPPED",
    "Shipped": "SHIPPED",
    "InvoiceUnconfirmed": "SHIPPED",
    "Canceled": "CANCELLED",
    "Unfulfillable": "UNFULFILLABLE",
}
#: What ``/_sandbox/truth`` renders by default: every includedData section but buyer PII.
TRUTH_INCLUDED_DATA: tuple[str, ...] = tuple(x for x in INCLUDED_DATA if x not in ("BUYER", "RECIPIENT"))
