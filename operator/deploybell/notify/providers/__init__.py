"""deploybell.notify.providers."""
