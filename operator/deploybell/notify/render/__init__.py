"""Per-provider rendering of the message model (pure)."""
