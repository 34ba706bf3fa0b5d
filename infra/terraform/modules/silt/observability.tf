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
  alarm_description   = "The ${each.key} function failed invocations."
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
  alarm_description   = "The ${each.key} function was throttled: raise its reserved concurrency or slow its trigger."
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
  alarm_description   = "A model or data test failed in the latest transform run."
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
