"""Background jobs: their history, cancel and retry (architecture §10)."""
