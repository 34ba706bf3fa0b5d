CREATE EXTERNAL TABLE IF NOT EXISTS `raw__shop__public__customers` (
  `_record_id` string,
  `_op` string,
  `_position` string,
  `_event_time` timestamp,
  `country` string,
  `created_at` timestamp,
  `customer_id` bigint,
  `email` string,
  `full_name` string,
  `updated_at` timestamp
)
PARTITIONED BY (`event_date` string, `event_hour` string)
STORED AS PARQUET
LOCATION 's3://example-lake/shop/raw/shop.public.customers/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.event_date.type'='date',
  'projection.event_date.format'='yyyy-MM-dd',
  'projection.event_date.range'='2026-01-01,NOW',
  'projection.event_date.interval'='1',
  'projection.event_date.interval.unit'='DAYS',
  'projection.event_hour.type'='integer',
  'projection.event_hour.range'='0,23',
  'projection.event_hour.digits'='2',
  'storage.location.template'='s3://example-lake/shop/raw/shop.public.customers/event_date=${event_date}/event_hour=${event_hour}',
  'silt.schema_version'='1'
);
