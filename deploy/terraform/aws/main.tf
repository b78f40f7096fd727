# What ArtStore needs outside Kubernetes on AWS (docs/deployment.md): S3 buckets for the
# S3-backed SEs, PostgreSQL on RDS, Redis on ElastiCache, one IAM identity per SE limited
# to its prefix. Outputs feed the Kubernetes secrets (deploy/k8s).

locals {
  tags    = merge({ "app" = "artstore" }, var.tags)
  kms_arn = var.kms_key_arn != null ? var.kms_key_arn : aws_kms_key.artstore[0].arn
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "artstore" {
  count                   = var.kms_key_arn == null ? 1 : 0
  description             = "${var.name}: S3, RDS, ElastiCache and secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = local.tags
}
