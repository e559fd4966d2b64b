"""deploybell.notify."""
