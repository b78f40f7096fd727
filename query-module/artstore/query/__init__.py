"""The query module: search, downloads with failover, signed links (architecture §8)."""
