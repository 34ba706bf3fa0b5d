-- order_changes_daily: statements Athena runs to build and publish it
DROP TABLE IF EXISTS "silt_shop".`order_changes_daily__golden`;

CREATE TABLE "silt_shop"."order_changes_daily__golden" WITH (format = 'PARQUET', write_compression = 'ZSTD', external_location = 's3://example-lake/shop/curated/order_changes_daily/build=golden/', partitioned_by = ARRAY['event_date']) AS
-- Order changes captured per event day and operation. Incremental: each run
-- reads only the raw days that received new objects since the last run and
-- replaces those days here, so a re-run or a backfill never counts twice.
-- Records are counted by id: a redelivered batch may land a record twice.
SELECT
    "_op" AS op,
    COUNT(DISTINCT "_record_id") AS changes,
    COUNT(DISTINCT order_id) AS orders,
    MAX("_event_time") AS "_event_time",
    event_date
FROM "silt_shop"."raw__shop__public__orders"
GROUP BY event_date, "_op";

CREATE OR REPLACE VIEW "silt_shop"."order_changes_daily" AS SELECT * FROM "silt_shop"."order_changes_daily__golden";

