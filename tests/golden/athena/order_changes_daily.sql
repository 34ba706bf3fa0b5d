-- order_changes_daily: a full build
SELECT * FROM (
-- Order changes captured per event day and operation. Incremental: each run
-- reads only the raw days that received new objects since the last run and
-- replaces those days here, so a re-run or a backfill never counts twice.
-- Records are counted by id: a redelivered batch may land a record twice.
-- Counted in steps (distinct records, then per order, then per day) rather
-- than with COUNT(DISTINCT ...): a distinct count keeps all of a group's
-- values in one set, which DataFusion cannot spill, so a busy day's set
-- outgrew a small `engine.memory_limit`; plain grouping spills.
SELECT
    op,
    SUM(changes) AS changes,
    COUNT(*) AS orders,
    MAX("_event_time") AS "_event_time",
    event_date
FROM (
    SELECT event_date, "_op" AS op, order_id, COUNT(*) AS changes, MAX("_event_time") AS "_event_time"
    FROM (
        SELECT DISTINCT event_date, "_op", order_id, "_record_id", "_event_time"
        FROM "silt_shop"."raw__shop__public__orders"
    ) records
    GROUP BY event_date, "_op", order_id
) per_order
GROUP BY event_date, op
) silt_columns LIMIT 0;

SELECT DISTINCT COALESCE(CAST("event_date" AS VARCHAR), '__HIVE_DEFAULT_PARTITION__') AS "event_date"
FROM (
-- Order changes captured per event day and operation. Incremental: each run
-- reads only the raw days that received new objects since the last run and
-- replaces those days here, so a re-run or a backfill never counts twice.
-- Records are counted by id: a redelivered batch may land a record twice.
-- Counted in steps (distinct records, then per order, then per day) rather
-- than with COUNT(DISTINCT ...): a distinct count keeps all of a group's
-- values in one set, which DataFusion cannot spill, so a busy day's set
-- outgrew a small `engine.memory_limit`; plain grouping spills.
SELECT
    op,
    SUM(changes) AS changes,
    COUNT(*) AS orders,
    MAX("_event_time") AS "_event_time",
    event_date
FROM (
    SELECT event_date, "_op" AS op, order_id, COUNT(*) AS changes, MAX("_event_time") AS "_event_time"
    FROM (
        SELECT DISTINCT event_date, "_op", order_id, "_record_id", "_event_time"
        FROM "silt_shop"."raw__shop__public__orders"
    ) records
    GROUP BY event_date, "_op", order_id
) per_order
GROUP BY event_date, op
) silt_partitions;

DROP TABLE IF EXISTS `silt_shop`.`order_changes_daily__ef3560341b2b636f`;

CREATE TABLE "silt_shop"."order_changes_daily__ef3560341b2b636f" WITH (table_type = 'ICEBERG', is_external = false, location = 's3://example-lake/shop/curated/order_changes_daily/build=ef3560341b2b636f/', format = 'PARQUET', write_compression = 'ZSTD', vacuum_max_snapshot_age_seconds = 86400, partitioning = ARRAY['event_date']) AS
SELECT "op", "changes", "orders", CAST("_event_time" AS timestamp(6)) AS "_event_time", "event_date"
FROM (
-- Order changes captured per event day and operation. Incremental: each run
-- reads only the raw days that received new objects since the last run and
-- replaces those days here, so a re-run or a backfill never counts twice.
-- Records are counted by id: a redelivered batch may land a record twice.
-- Counted in steps (distinct records, then per order, then per day) rather
-- than with COUNT(DISTINCT ...): a distinct count keeps all of a group's
-- values in one set, which DataFusion cannot spill, so a busy day's set
-- outgrew a small `engine.memory_limit`; plain grouping spills.
SELECT
    op,
    SUM(changes) AS changes,
    COUNT(*) AS orders,
    MAX("_event_time") AS "_event_time",
    event_date
FROM (
    SELECT event_date, "_op" AS op, order_id, COUNT(*) AS changes, MAX("_event_time") AS "_event_time"
    FROM (
        SELECT DISTINCT event_date, "_op", order_id, "_record_id", "_event_time"
        FROM "silt_shop"."raw__shop__public__orders"
    ) records
    GROUP BY event_date, "_op", order_id
) per_order
GROUP BY event_date, op
) silt_iceberg;

SELECT COUNT(*) FROM "silt_shop"."order_changes_daily__ef3560341b2b636f";

CREATE OR REPLACE VIEW "silt_shop"."order_changes_daily" AS SELECT * FROM "silt_shop"."order_changes_daily__ef3560341b2b636f";

