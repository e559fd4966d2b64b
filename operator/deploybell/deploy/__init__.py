"""deploybell.deploy."""
