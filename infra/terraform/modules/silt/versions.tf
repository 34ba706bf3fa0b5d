# Silt's Terraform module: the four functions, their queues, schedules,
# storage, Athena work group, least-privilege roles, alarms and dashboard.
terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}
