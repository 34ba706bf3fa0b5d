/* silt
materialized = "table"
tags = ["nightly", "finance"]

[tests]
not_null = ["order_date", "currency", "revenue_cents"]
custom = ["SELECT order_date, currency FROM {{ this }} GROUP BY order_date, currency HAVING COUNT(*) > 1"]
*/
-- Revenue per day and currency from the current state of orders.
-- created_at is a timestamp (UTC): Debezium's ZonedTimestamp, declared
-- under `columns` in silt.toml.
SELECT
    CAST(created_at AS DATE) AS order_date,
    currency,
    COUNT(*) AS orders,
    SUM(amount_cents - COALESCE(discount_cents, 0)) AS revenue_cents
FROM {{ ref('orders_current') }}
WHERE status <> 'cancelled'
GROUP BY CAST(created_at AS DATE), currency
