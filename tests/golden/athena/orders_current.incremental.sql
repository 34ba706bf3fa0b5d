-- orders_current: an incremental run over one day that holds a truncate
MERGE INTO "silt_shop"."orders_current__0f8ad59183e2b458" t
USING (
SELECT "amount_cents", CAST("created_at" AS timestamp(6)) AS "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", CAST("updated_at" AS timestamp(6)) AS "updated_at", CAST("_event_time" AS timestamp(6)) AS "_event_time", "_position", COALESCE("_op" = 'd', false) AS "_deleted"
FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY "order_id" ORDER BY "_position" DESC) AS "_silt_rn"
  FROM (
SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position", "_op"
FROM (SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "event_date" IN ('2026-01-02'))
  ) silt_delta
  WHERE "_op" IS DISTINCT FROM 't'
) silt_latest
WHERE "_silt_rn" = 1
) s
ON t."order_id" = s."order_id"
WHEN MATCHED AND s."_position" >= t."_position" THEN UPDATE SET "amount_cents" = s."amount_cents", "created_at" = s."created_at", "currency" = s."currency", "customer_id" = s."customer_id", "discount_cents" = s."discount_cents", "items" = s."items", "note" = s."note", "order_id" = s."order_id", "status" = s."status", "updated_at" = s."updated_at", "_event_time" = s."_event_time", "_position" = s."_position", "_deleted" = s."_deleted"
WHEN NOT MATCHED THEN INSERT ("amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position", "_deleted") VALUES (s."amount_cents", s."created_at", s."currency", s."customer_id", s."discount_cents", s."items", s."note", s."order_id", s."status", s."updated_at", s."_event_time", s."_position", s."_deleted");

SELECT MAX("_position") FROM (
SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position", "_op"
FROM (SELECT * FROM "silt_shop"."raw__shop__public__orders" WHERE "event_date" IN ('2026-01-02'))
) silt_truncates WHERE "_op" = 't';

UPDATE "silt_shop"."orders_current__0f8ad59183e2b458" SET "_deleted" = true
WHERE "_position" < '00000000000000000042' AND NOT "_deleted";

SELECT COUNT(*) FROM "silt_shop"."orders_current__0f8ad59183e2b458" WHERE NOT "_deleted";

CREATE OR REPLACE VIEW "silt_shop"."orders_current" AS SELECT "amount_cents", "created_at", "currency", "customer_id", "discount_cents", "items", "note", "order_id", "status", "updated_at", "_event_time", "_position" FROM "silt_shop"."orders_current__0f8ad59183e2b458" WHERE NOT "_deleted";

