"""Column and dataset names, in one place.

The input and output names are the data contract's (`../shared/contract/DATA_CONTRACT.md`);
the derived names are this project's. Pair columns end in `_l` / `_r`.
"""

from __future__ import annotations

# Datasets (input file stems) ---------------------------------------------------------------
ACCOUNTS = "accounts"
PAYMENT_INSTRUMENTS = "payment_instruments"
LOGISTICS = "logistics"
ENFORCEMENT_SIGNALS = "enforcement_signals"
INPUT_DATASETS = (ACCOUNTS, PAYMENT_INSTRUMENTS, LOGISTICS, ENFORCEMENT_SIGNALS)

# accounts ----------------------------------------------------------------------------------
ACCOUNT_ID = "account_id"
PLATFORM = "platform"
REGISTERED_AT = "registered_at"
SHOP_NAME = "shop_name"
LEGAL_NAME = "legal_name"
ID_TYPE = "id_type"
ID_NUMBER = "id_number"
PHONE = "phone"
EMAIL = "email"
REGISTRATION_IP = "registration_ip"
DEVICE_ID = "device_id"
COUNTRY = "country"
PROVINCE = "province"
CITY = "city"
ADDRESS = "address"
# Not in the contract: read when a source supplies it (`yyyymmdd`, `yyyy-mm-dd` or a date).
DATE_OF_BIRTH = "date_of_birth"

# payment_instruments -----------------------------------------------------------------------
INSTRUMENT_TYPE = "instrument_type"
INSTRUMENT_ID = "instrument_id"
HOLDER_NAME = "holder_name"
BANK_NAME = "bank_name"
ADDED_AT = "added_at"

# logistics ---------------------------------------------------------------------------------
ROLE = "role"
CONTACT_NAME = "contact_name"
CONTACT_PHONE = "contact_phone"
POSTCODE = "postcode"
SHIPMENT_COUNT = "shipment_count"
FIRST_USED_AT = "first_used_at"
LAST_USED_AT = "last_used_at"

# enforcement_signals -----------------------------------------------------------------------
SIGNAL_TYPE = "signal_type"
SIGNAL_COUNT = "signal_count"
OBSERVED_AT = "observed_at"

# truth -------------------------------------------------------------------------------------
ENTITY_ID = "entity_id"
TRUE_ENTITY_ID = "true_entity_id"

# Allowed values of the contract's enumerated columns ----------------------------------------
ID_TYPES = ("CN_RIC", "CN_USCC", "PASSPORT", "OTHER")
INSTRUMENT_TYPES = ("alipay", "bank_account", "card", "wallet", "other")
LOGISTICS_ROLES = ("ship_from", "return", "warehouse", "pickup")
SIGNAL_TYPES = (
    "rights_holder_complaint",
    "customer_complaint",
    "test_buy_counterfeit",
    "listing_takedown",
    "other",
)

# Derived (standardised) columns -------------------------------------------------------------
PHONE_E164 = "phone_e164"
PHONE_VALID = "phone_valid"
EMAIL_CANONICAL = "email_canonical"
ID_NUMBER_NORM = "id_number_norm"
ID_NUMBER_HASH = "id_number_hash"
ID_NUMBER_FUZZY = "id_number_fuzzy"
ID_VALID = "id_valid"
ID_REGION = "id_region"
BIRTH_DATE = "birth_date"
INSTRUMENT_HASH = "instrument_hash"
INSTRUMENT_LAST4 = "instrument_last4"
INSTRUMENT_VALID = "instrument_valid"
ISSUER_PREFIX = "issuer_prefix"
IP_NORM = "ip_norm"
IP_PREFIX = "ip_prefix"
DEVICE_NORM = "device_norm"
ADDRESS_KEY = "address_key"
ADDRESS_TOKENS = "address_tokens"
POSTCODE_NORM = "postcode_norm"
NAME_NORM = "name_norm"
NAME_TOKENS = "name_tokens"
NAME_KEY = "name_key"
NAME_SUFFIX = "name_suffix"
HOLDER_NAME_KEY = "holder_name_key"
CONTACT_NAME_KEY = "contact_name_key"
CONTACT_PHONE_E164 = "contact_phone_e164"
CITY_KEY = "city_key"

# Blocking and pairs -------------------------------------------------------------------------
ATTRIBUTE = "attribute"
VALUE_KEY = "value_key"
ACCOUNT_COUNT = "account_count"
VERTEX_ID = "vertex_id"
ACCOUNT_ID_L = "account_id_l"
ACCOUNT_ID_R = "account_id_r"
SHARED_ATTRIBUTES = "shared_attributes"
EVIDENCE = "evidence"
MATCH_WEIGHT = "match_weight"
MATCH_PROBABILITY = "match_probability"
COMPONENT = "component"

# Outputs ------------------------------------------------------------------------------------
RUN_ID = "run_id"
DATASET = "dataset"
RECORD = "record"
REASON = "reason"
