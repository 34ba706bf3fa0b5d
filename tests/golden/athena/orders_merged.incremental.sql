-- orders_merged (test model): an incremental run bringing a new column
SELECT * FROM (
SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" <> 't'
) silt_columns LIMIT 0;

ALTER TABLE `silt_shop`.`orders_merged__b7b37ec607e3a05a` ADD COLUMNS (`discount_cents` bigint);

MERGE INTO "silt_shop"."orders_merged__b7b37ec607e3a05a" t
USING (
SELECT "order_id", "status", "discount_cents", "_position", COALESCE("_op" = 'd', false) AS "_deleted"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "order_id" ORDER BY "_position" DESC) AS "_silt_rn"
  FROM (
SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "_op" <> 't'
  ) silt_delta
  WHERE "_op" IS DISTINCT FROM 't'
) silt_latest
WHERE "_silt_rn" = 1
) s
ON t."order_id" = s."order_id"
WHEN MATCHED AND s."_position" >= t."_position" THEN UPDATE SET "order_id" = s."order_id", "status" = s."status", "discount_cents" = s."discount_cents", "_position" = s."_position", "_deleted" = s."_deleted"
WHEN NOT MATCHED THEN INSERT ("order_id", "status", "discount_cents", "_position", "_deleted") VALUES (s."order_id", s."status", s."discount_cents", s."_position", s."_deleted");

SELECT COUNT(*) FROM "silt_shop"."orders_merged__b7b37ec607e3a05a" WHERE NOT "_deleted";

CREATE OR REPLACE VIEW "silt_shop"."orders_merged" AS SELECT "order_id", "status", "_position", "discount_cents" FROM "silt_shop"."orders_merged__b7b37ec607e3a05a" WHERE NOT "_deleted";

