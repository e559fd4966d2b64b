"""deploybell.api."""
