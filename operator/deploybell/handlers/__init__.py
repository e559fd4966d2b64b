"""kopf glue only: importing this package registers every handler."""

from deploybell.handlers import deployjob, notification, startup

__all__ = ["deployjob", "notification", "startup"]
