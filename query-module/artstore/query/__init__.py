"""The query module: search, downloads with failover, signed links (DESIGN §8)."""
