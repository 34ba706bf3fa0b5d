-- customers_current: statements Athena runs to build and publish it
DROP TABLE IF EXISTS "silt_shop".`customers_current__golden`;

CREATE TABLE "silt_shop"."customers_current__golden" WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = 's3://example-lake/shop/curated/customers_current/build=golden/') AS
SELECT "country", "created_at", "customer_id", "email", "full_name", "updated_at", "_event_time", "_position"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "customer_id" ORDER BY "_position" DESC, "_record_id" DESC) AS "_rn"
  FROM "silt_shop"."raw__shop__public__customers" WHERE "_op" <> 't'
) ranked
WHERE "_rn" = 1 AND "_op" <> 'd'
  AND "_position" > COALESCE((SELECT MAX("_position") FROM "silt_shop"."raw__shop__public__customers" WHERE "_op" = 't'), '');

CREATE OR REPLACE VIEW "silt_shop"."customers_current" AS SELECT * FROM "silt_shop"."customers_current__golden";

