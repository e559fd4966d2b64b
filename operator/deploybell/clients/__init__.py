"""deploybell.clients."""
