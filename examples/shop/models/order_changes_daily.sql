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
SELECT
    "_op" AS op,
    COUNT(DISTINCT "_record_id") AS changes,
    COUNT(DISTINCT order_id) AS orders,
    MAX("_event_time") AS "_event_time",
    event_date
FROM {{ source('shop.public.orders') }}
GROUP BY event_date, "_op"
