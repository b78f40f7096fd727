# Redis for the job queue's locks, rate limits and events: ElastiCache, a primary and a
# replica in another AZ with automatic failover, encrypted at rest and in transit, an
# AUTH token (var.redis_auth_token; it goes to the Kubernetes secret inside REDIS_URL).

resource "aws_elasticache_subnet_group" "artstore" {
  name       = "${var.name}-redis"
  subnet_ids = var.subnet_ids
  tags       = local.tags
}

resource "aws_elasticache_replication_group" "artstore" {
  replication_group_id       = "${var.name}-redis"
  description                = "ArtStore queue locks, rate limits, events"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.artstore.name
  security_group_ids         = [aws_security_group.data.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = local.kms_arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  tags                       = local.tags
}
