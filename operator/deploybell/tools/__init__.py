"""The one-shot tools behind `deploybell validate|render|notify-test` and `kubectl deploybell`."""
