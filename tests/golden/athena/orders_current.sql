-- orders_current: a full build
DROP TABLE IF EXISTS `silt_shop`.`orders_current__0f8ad59183e2b458`;

CREATE TABLE "silt_shop"."orders_current__0f8ad59183e2b458" WITH (table_type = 'ICEBERG', is_external = false, location = 's3://example-lake/shop/curated/orders_current/build=0f8ad59183e2b458/', format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = 86400) AS
SELECT "amount_cents", CAST("created_at" AS timestamp(6)) AS "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", CAST("updated_at" AS timestamp(6)) AS "updated_at", CAST("_event_time" AS timestamp(6)) AS "_event_time", "_position", COALESCE("_op" = 'd', false) AS "_deleted"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "order_id" ORDER BY "_position" DESC) AS "_silt_rn"
  FROM (
SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position", "_op"
FROM "silt_shop"."raw__shop__public__orders"
  ) silt_delta
  WHERE "_op" IS DISTINCT FROM 't'
) silt_latest
WHERE "_silt_rn" = 1;

SELECT MAX("_position") FROM (
SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position", "_op"
FROM "silt_shop"."raw__shop__public__orders"
) silt_truncates WHERE "_op" = 't';

SELECT COUNT(*) FROM "silt_shop"."orders_current__0f8ad59183e2b458" WHERE NOT "_deleted";

CREATE OR REPLACE VIEW "silt_shop"."orders_current" AS SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position" FROM "silt_shop"."orders_current__0f8ad59183e2b458" WHERE NOT "_deleted";

