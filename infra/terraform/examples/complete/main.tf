# A complete deployment of Silt with the module's defaults.
# Build the artifacts first: `make build` (writes target/lambda/<name>/bootstrap.zip).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}


module "silt" {
  source        = "../../modules/silt"
  name          = "silt"
  artifacts_dir = "${path.root}/../../../../target/lambda"
  source_name   = "shop"
  # Create it first: aws ssm put-parameter --name /silt/pii-key --type SecureString --key-id <kms_key_arn output> --value ...
  pii_key_parameter = "/silt/pii-key"
  datasets          = ["shop.public.orders", "shop.public.customers"]
  tags = {
    project = "silt"
  }
}

output "lake_bucket" {
  description = "Upload silt.toml and models/ under config/ here."
  value       = module.silt.lake_bucket
}

output "ingest_queue_url" {
  description = "Where CDC producers send messages."
  value       = module.silt.ingest_queue_url
}
