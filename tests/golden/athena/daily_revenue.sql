-- daily_revenue: statements Athena runs to build and publish it
DROP TABLE IF EXISTS "silt_shop".`daily_revenue__golden`;

CREATE TABLE "silt_shop"."daily_revenue__golden" WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = 's3://example-lake/shop/curated/daily_revenue/build=golden/') AS
-- Revenue per day and currency from the current state of orders.
-- created_at is ISO-8601 text (Debezium ZonedTimestamp); its first ten
-- characters are the UTC date in both Athena and DataFusion.
SELECT
    CAST(substr(created_at, 1, 10) AS DATE) AS order_date,
    currency,
    COUNT(*) AS orders,
    SUM(amount_cents - COALESCE(discount_cents, 0)) AS revenue_cents
FROM "silt_shop"."orders_current"
WHERE status <> 'cancelled'
GROUP BY CAST(substr(created_at, 1, 10) AS DATE), currency;

CREATE OR REPLACE VIEW "silt_shop"."daily_revenue" AS SELECT * FROM "silt_shop"."daily_revenue__golden";

