-- daily_revenue: the third rebuild, which drops the table two rebuilds retired
SELECT * FROM (
-- Revenue per day and currency from the current state of orders.
-- created_at is a timestamp (UTC): Debezium's ZonedTimestamp, declared
-- under `columns` in silt.toml.
SELECT
    CAST(created_at AS DATE) AS order_date,
    currency,
    COUNT(*) AS orders,
    SUM(amount_cents - COALESCE(discount_cents, 0)) AS revenue_cents
FROM "silt_shop"."orders_current"
WHERE status <> 'cancelled'
GROUP BY CAST(created_at AS DATE), currency
) silt_columns LIMIT 0;

DROP TABLE IF EXISTS `silt_shop`.`daily_revenue__1f250d19bf54eef3`;

CREATE TABLE "silt_shop"."daily_revenue__1f250d19bf54eef3" WITH (table_type = 'ICEBERG', is_external = false, location = 's3://example-lake/shop/curated/daily_revenue/build=1f250d19bf54eef3/', format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = 86400) AS
-- Revenue per day and currency from the current state of orders.
-- created_at is a timestamp (UTC): Debezium's ZonedTimestamp, declared
-- under `columns` in silt.toml.
SELECT
    CAST(created_at AS DATE) AS order_date,
    currency,
    COUNT(*) AS orders,
    SUM(amount_cents - COALESCE(discount_cents, 0)) AS revenue_cents
FROM "silt_shop"."orders_current"
WHERE status <> 'cancelled'
GROUP BY CAST(created_at AS DATE), currency;

SELECT COUNT(*) FROM "silt_shop"."daily_revenue__1f250d19bf54eef3";

CREATE OR REPLACE VIEW "silt_shop"."daily_revenue" AS SELECT * FROM "silt_shop"."daily_revenue__1f250d19bf54eef3";

DROP TABLE IF EXISTS `silt_shop`.`daily_revenue__fdf5318aafcb3918`;

