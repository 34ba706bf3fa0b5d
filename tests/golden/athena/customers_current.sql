-- customers_current: a full build
DROP TABLE IF EXISTS `silt_shop`.`customers_current__643fc2e7fc577bf8`;

CREATE TABLE "silt_shop"."customers_current__643fc2e7fc577bf8" WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = 's3://example-lake/shop/curated/customers_current/build=643fc2e7fc577bf8/') AS
SELECT "country", "created_at", "customer_id", "email", "full_name", "updated_at", "_event_time", "_position"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "customer_id" ORDER BY "_position" DESC, "_record_id" DESC) AS "_rn"
  FROM "silt_shop"."raw__shop__public__customers" WHERE "_op" <> 't'
) ranked
WHERE "_rn" = 1 AND "_op" <> 'd'
  AND "_position" > COALESCE((SELECT MAX("_position") FROM "silt_shop"."raw__shop__public__customers" WHERE "_op" = 't'), '');

SELECT COUNT(*) FROM "silt_shop"."customers_current__643fc2e7fc577bf8";

CREATE OR REPLACE VIEW "silt_shop"."customers_current" AS SELECT * FROM "silt_shop"."customers_current__643fc2e7fc577bf8";

