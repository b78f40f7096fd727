"""The ingester: uploads streamed to storage elements (architecture §7). Stateless."""
