/* silt
materialized = "table"
tags = ["nightly", "finance"]

[tests]
not_null = ["order_date", "currency", "revenue_cents"]
custom = ["SELECT order_date, currency FROM {{ this }} GROUP BY order_date, currency HAVING COUNT(*) > 1"]
*/
-- Revenue per day and currency from the current state of orders.
-- created_at is ISO-8601 text in UTC (Debezium ZonedTimestamp); Trino's
-- from_iso8601_timestamp reads it on Athena, Silt's UDF of the same name
-- on DataFusion.
SELECT
    CAST(from_iso8601_timestamp(created_at) AS DATE) AS order_date,
    currency,
    COUNT(*) AS orders,
    SUM(amount_cents - COALESCE(discount_cents, 0)) AS revenue_cents
FROM {{ ref('orders_current') }}
WHERE status <> 'cancelled'
GROUP BY CAST(from_iso8601_timestamp(created_at) AS DATE), currency
