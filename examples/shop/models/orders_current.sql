/* silt
materialized = "current_state"
source = "shop.public.orders"
tags = ["nightly", "cdc"]

[tests]
not_null = ["order_id", "customer_id", "status", "currency"]
unique = ["order_id"]
accepted_values = { status = ["pending", "paid", "shipped", "delivered", "cancelled"], currency = ["EUR", "USD", "GBP", "NOK"] }
custom = ["SELECT * FROM {{ this }} WHERE amount_cents < 0"]
*/
