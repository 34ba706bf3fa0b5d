resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = local.kms_arn
  tags              = var.tags
}

# Anything in a dead-letter queue is a message Silt gave up on.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each            = local.queues
  alarm_name          = "${var.name}-${each.key}-dlq-not-empty"
  alarm_description   = "Messages in the ${each.key} dead-letter queue. Runbook: docs/runbooks/dead-letter-queue.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = var.functions
  alarm_name          = "${var.name}-${each.key}-errors"
  alarm_description   = "The ${each.key} function failed invocations. Runbook: docs/runbooks/function-errors.md"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.fn[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  for_each            = var.functions
  alarm_name          = "${var.name}-${each.key}-throttles"
  alarm_description   = "The ${each.key} function was throttled: more work arrived than its concurrency (reserved, or what the account has left) allows. Runbook: docs/runbooks/backfill-storm.md"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.fn[each.key].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# Emitted by the monitor function (EMF): datasets whose newest event is older than their SLO.
resource "aws_cloudwatch_metric_alarm" "freshness" {
  alarm_name          = "${var.name}-freshness-slo-breach"
  alarm_description   = "A dataset breaches its freshness SLO (see the dashboard for which). Runbook: docs/runbooks/ingest-lag.md"
  namespace           = "Silt"
  metric_name         = "DatasetsBreachingFreshness"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "models_failed" {
  alarm_name          = "${var.name}-models-failed"
  alarm_description   = "A model or data test failed in the latest transform run. Runbook: docs/runbooks/model-failures.md"
  namespace           = "Silt"
  metric_name         = "ModelsFailed"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "glue_tables" {
  alarm_name          = "${var.name}-glue-tables-near-quota"
  alarm_description   = "Silt holds 80% of Glue's 200,000 tables per database. Runbook: docs/runbooks/glue-tables.md"
  namespace           = "Silt"
  metric_name         = "GlueTablesHeld"
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = 160000
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "iceberg_upkeep" {
  alarm_name          = "${var.name}-iceberg-upkeep-behind"
  alarm_description   = "An Iceberg model keeps snapshots older than three days: its upkeep is not running. Runbook: docs/runbooks/iceberg-upkeep.md"
  namespace           = "Silt"
  metric_name         = "OldestSnapshotAgeSecondsMax"
  statistic           = "Minimum"
  period              = 3600
  evaluation_periods  = 3
  threshold           = 259200
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "athena_bytes" {
  alarm_name          = "${var.name}-athena-daily-bytes-over-budget"
  alarm_description   = "Athena scanned more than the daily budget in the ${var.name} work group. Runbook: docs/runbooks/cost-spike.md"
  namespace           = "AWS/Athena"
  metric_name         = "ProcessedBytes"
  dimensions          = { WorkGroup = aws_athena_workgroup.this.name }
  statistic           = "Sum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = var.athena_daily_bytes_budget
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# Multi-window burn rates, evaluated by the monitor function (SloPageAlerts, SloTicketAlerts).
resource "aws_cloudwatch_metric_alarm" "slo_page" {
  alarm_name          = "${var.name}-slo-burn-page"
  alarm_description   = "An SLO burns its error budget fast (1 h and 5 min windows): page. Runbook: docs/runbooks/ingest-lag.md"
  namespace           = "Silt"
  metric_name         = "SloPageAlerts"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "slo_ticket" {
  alarm_name          = "${var.name}-slo-burn-ticket"
  alarm_description   = "An SLO burns its error budget steadily (6 h and 30 min windows): ticket. Runbook: docs/runbooks/ingest-lag.md"
  namespace           = "Silt"
  metric_name         = "SloTicketAlerts"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

# Emitted by the land function: records quarantined for an incompatible type change.
resource "aws_cloudwatch_metric_alarm" "schema_break" {
  alarm_name          = "${var.name}-schema-break"
  alarm_description   = "Records were quarantined for an incompatible schema change. Runbook: docs/runbooks/schema-break.md"
  namespace           = "Silt"
  metric_name         = "RecordsQuarantined"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# Emitted by the monitor: raw objects without a manifest. Three checks in a row,
# so a write in flight while the monitor lists is not an alarm.
resource "aws_cloudwatch_metric_alarm" "partial_writes" {
  alarm_name          = "${var.name}-partial-writes"
  alarm_description   = "Raw objects without a manifest: a batch stopped between data and manifest. Runbook: docs/runbooks/partial-writes.md"
  namespace           = "Silt"
  metric_name         = "OrphanObjects"
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# Emitted by the ingest function: undeclared columns that look like PII.
resource "aws_cloudwatch_metric_alarm" "data_leakage" {
  alarm_name          = "${var.name}-pii-in-undeclared-columns"
  alarm_description   = "Records carry what looks like PII in columns not declared under pii. Runbook: docs/runbooks/data-leakage.md"
  namespace           = "Silt"
  metric_name         = "RecordsPiiSuspected"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# A message waiting this long means its consumer is stuck or failing it over and over.
resource "aws_cloudwatch_metric_alarm" "stuck" {
  for_each            = local.queues
  alarm_name          = "${var.name}-${each.key}-stuck"
  alarm_description   = "The oldest message in the ${each.key} queue waits too long. Runbook: docs/runbooks/stuck-jobs.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.queue[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.stuck_after_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

# Emitted by the monitor: how far curated models lag the raw zone.
resource "aws_cloudwatch_metric_alarm" "stale_metadata" {
  alarm_name          = "${var.name}-curated-lags-raw"
  alarm_description   = "Curated models lag the landed data: transforms or table metadata are stale. Runbook: docs/runbooks/stale-metadata.md"
  namespace           = "Silt"
  metric_name         = "CuratedLagSeconds"
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.curated_lag_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = concat(
      [
        {
          type = "metric", x = 0, y = 0, width = 12, height = 6
          properties = {
            title   = "Freshness of landed data (seconds)"
            region  = local.region
            stat    = "Maximum"
            metrics = [for d in var.datasets : ["Silt", "FreshnessLandedSeconds", "dataset", d]]
          }
        },
        {
          type = "metric", x = 12, y = 0, width = 12, height = 6
          properties = {
            title   = "Records ingested and landed"
            region  = local.region
            stat    = "Sum"
            metrics = concat([for d in var.datasets : ["Silt", "RecordsIngested", "dataset", d]], [for d in var.datasets : ["Silt", "RecordsLanded", "dataset", d]])
          }
        },
        {
          type = "metric", x = 0, y = 6, width = 12, height = 6
          properties = {
            title   = "Function errors and throttles"
            region  = local.region
            stat    = "Sum"
            metrics = concat([for f, _ in var.functions : ["AWS/Lambda", "Errors", "FunctionName", "${var.name}-${f}"]], [for f, _ in var.functions : ["AWS/Lambda", "Throttles", "FunctionName", "${var.name}-${f}"]])
          }
        },
        {
          type = "metric", x = 12, y = 6, width = 12, height = 6
          properties = {
            title   = "Dead-letter queues"
            region  = local.region
            stat    = "Maximum"
            metrics = [for q, _ in local.queues : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${var.name}-${q}-dlq"]]
          }
        },
        {
          type = "metric", x = 0, y = 18, width = 12, height = 6
          properties = {
            title  = "SLO alerts, orphan objects, suspected PII"
            region = local.region
            stat   = "Maximum"
            metrics = [
              ["Silt", "SloPageAlerts"], ["Silt", "SloTicketAlerts"], ["Silt", "OrphanObjects"], ["Silt", "RecordsPiiSuspected"],
            ]
          }
        },
        {
          type = "metric", x = 12, y = 18, width = 12, height = 6
          properties = {
            title   = "Estimated cost (USD) and cost per million events"
            region  = local.region
            stat    = "Maximum"
            metrics = [["Silt", "CostUsd"], ["Silt", "CostPerMillionEventsUsd"]]
          }
        },
        {
          type = "metric", x = 0, y = 12, width = 24, height = 6
          properties = {
            title   = "Athena bytes scanned per day"
            region  = local.region
            stat    = "Sum"
            period  = 86400
            metrics = [["AWS/Athena", "ProcessedBytes", "WorkGroup", var.name]]
          }
        },
      ],
    )
  })
}
