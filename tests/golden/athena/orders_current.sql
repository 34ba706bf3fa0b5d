-- orders_current: a full build
DROP TABLE IF EXISTS `silt_shop`.`orders_current__4481ed0dbd850584`;

CREATE TABLE "silt_shop"."orders_current__4481ed0dbd850584" WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = 's3://example-lake/shop/curated/orders_current/build=4481ed0dbd850584/') AS
SELECT "amount_cents", "created_at", "currency", "customer_id", "items", "note", "order_id", "status", "updated_at", "discount_cents", "_event_time", "_position"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "order_id" ORDER BY "_position" DESC, "_record_id" DESC) AS "_rn"
  FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" <> 't'
) ranked
WHERE "_rn" = 1 AND "_op" <> 'd'
  AND "_position" > COALESCE((SELECT MAX("_position") FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" = 't'), '');

SELECT COUNT(*) FROM "silt_shop"."orders_current__4481ed0dbd850584";

CREATE OR REPLACE VIEW "silt_shop"."orders_current" AS SELECT * FROM "silt_shop"."orders_current__4481ed0dbd850584";

