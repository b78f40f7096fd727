"""Dev-only command implementations."""
