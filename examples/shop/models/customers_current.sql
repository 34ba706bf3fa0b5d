/* silt
materialized = "current_state"
source = "shop.public.customers"
tags = ["nightly", "cdc"]

[tests]
not_null = ["customer_id", "email"]
unique = ["customer_id"]
# PII is masked at ingest: a raw email here would be a leak.
custom = ["SELECT * FROM {{ this }} WHERE email LIKE '%@%' OR (full_name IS NOT NULL AND full_name <> 'REDACTED')"]
*/
