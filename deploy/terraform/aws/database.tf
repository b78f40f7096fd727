# The catalog and the admin's tables: PostgreSQL on RDS, multi-AZ, encrypted, backed up
# (point-in-time restore within the retention), TLS required; read replicas for the query
# module's searches (docs/deployment.md). The master password is managed by RDS in
# Secrets Manager (never in Terraform state).

resource "aws_db_subnet_group" "artstore" {
  name       = "${var.name}-db"
  subnet_ids = var.subnet_ids
  tags       = local.tags
}

resource "aws_security_group" "data" {
  name        = "${var.name}-data"
  description = "PostgreSQL and Redis, reachable from the cluster only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.data.id
  description                  = "PostgreSQL from the cluster"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  for_each                     = toset(var.client_security_group_ids)
  security_group_id            = aws_security_group.data.id
  description                  = "Redis from the cluster"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_db_parameter_group" "artstore" {
  name   = "${var.name}-pg"
  family = "postgres${split(".", var.postgres_version)[0]}"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  tags = local.tags
}

resource "aws_db_instance" "artstore" {
  identifier                          = "${var.name}-pg"
  engine                              = "postgres"
  engine_version                      = var.postgres_version
  instance_class                      = var.postgres_instance_class
  allocated_storage                   = var.postgres_storage_gb
  max_allocated_storage               = var.postgres_storage_gb * 4
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = local.kms_arn
  db_name                             = "artstore"
  username                            = "artstore"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = local.kms_arn
  multi_az                            = true
  db_subnet_group_name                = aws_db_subnet_group.artstore.name
  vpc_security_group_ids              = [aws_security_group.data.id]
  parameter_group_name                = aws_db_parameter_group.artstore.name
  publicly_accessible                 = false
  backup_retention_period             = var.postgres_backup_retention_days
  backup_window                       = "02:00-03:00"
  maintenance_window                  = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-pg-final"
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = local.kms_arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  tags                                = local.tags
}

resource "aws_db_instance" "replica" {
  count                               = var.postgres_read_replicas
  identifier                          = "${var.name}-pg-replica-${count.index}"
  replicate_source_db                 = aws_db_instance.artstore.identifier
  instance_class                      = var.postgres_instance_class
  storage_encrypted                   = true
  kms_key_id                          = local.kms_arn
  vpc_security_group_ids              = [aws_security_group.data.id]
  parameter_group_name                = aws_db_parameter_group.artstore.name
  publicly_accessible                 = false
  multi_az                            = false
  skip_final_snapshot                 = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = local.kms_arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  deletion_protection                 = var.deletion_protection
  copy_tags_to_snapshot               = true
  tags                                = local.tags
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
