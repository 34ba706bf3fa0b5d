/* silt
materialized = "incremental"
strategy = "append"
partitioned_by = ["event_date"]
tags = ["cdc"]

[tests]
not_null = ["op", "changes", "orders"]
accepted_values = { op = ["c", "u", "d", "r", "t"] }
custom = ["SELECT event_date, op FROM {{ this }} GROUP BY event_date, op HAVING COUNT(*) > 1"]
*/
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
        FROM {{ source('shop.public.orders') }}
    ) records
    GROUP BY event_date, "_op", order_id
) per_order
GROUP BY event_date, op
