-- customers_current: a full build
DROP TABLE IF EXISTS `silt_shop`.`customers_current__8b97863f868c540d`;

CREATE TABLE "silt_shop"."customers_current__8b97863f868c540d" WITH (table_type = 'ICEBERG', is_external = false, location = 's3://example-lake/shop/curated/customers_current/build=8b97863f868c540d/', format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = 86400) AS
SELECT "country", CAST("created_at" AS timestamp(6)) AS "created_at", "customer_id", "email", "full_name", CAST("updated_at" AS timestamp(6)) AS "updated_at", CAST("_event_time" AS timestamp(6)) AS "_event_time", "_position", COALESCE("_op" = 'd', false) AS "_deleted"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "customer_id" ORDER BY "_position" DESC) AS "_silt_rn"
  FROM (
SELECT "country", "created_at", "customer_id", "email", "full_name", "updated_at", "_event_time", "_position", "_op"
FROM "silt_shop"."raw__shop__public__customers"
  ) silt_delta
  WHERE "_op" IS DISTINCT FROM 't'
) silt_latest
WHERE "_silt_rn" = 1;

SELECT MAX("_position") FROM (
SELECT "country", "created_at", "customer_id", "email", "full_name", "updated_at", "_event_time", "_position", "_op"
FROM "silt_shop"."raw__shop__public__customers"
) silt_truncates WHERE "_op" = 't';

SELECT COUNT(*) FROM "silt_shop"."customers_current__8b97863f868c540d" WHERE NOT "_deleted";

CREATE OR REPLACE VIEW "silt_shop"."customers_current" AS SELECT "country", "created_at", "customer_id", "email", "full_name", "updated_at", "_event_time", "_position" FROM "silt_shop"."customers_current__8b97863f868c540d" WHERE NOT "_deleted";

