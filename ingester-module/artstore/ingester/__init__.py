"""The ingester: uploads streamed to storage elements (DESIGN §7). Stateless."""
