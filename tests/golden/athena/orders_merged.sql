-- orders_merged (test model): a full build
SELECT * FROM (
SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" <> 't'
) silt_columns LIMIT 0;

DROP TABLE IF EXISTS `silt_shop`.`orders_merged__b7b37ec607e3a05a`;

CREATE TABLE "silt_shop"."orders_merged__b7b37ec607e3a05a" WITH (table_type = 'ICEBERG', is_external = false, location = 's3://example-lake/shop/curated/orders_merged/build=b7b37ec607e3a05a/', format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = 86400) AS
SELECT "order_id", "status", "_position", COALESCE("_op" = 'd', false) AS "_deleted"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "order_id" ORDER BY "_position" DESC) AS "_silt_rn"
  FROM (
SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" <> 't'
  ) silt_delta
  WHERE "_op" IS DISTINCT FROM 't'
) silt_latest
WHERE "_silt_rn" = 1;

SELECT COUNT(*) FROM "silt_shop"."orders_merged__b7b37ec607e3a05a" WHERE NOT "_deleted";

CREATE OR REPLACE VIEW "silt_shop"."orders_merged" AS SELECT "order_id", "status", "_position" FROM "silt_shop"."orders_merged__b7b37ec607e3a05a" WHERE NOT "_deleted";

