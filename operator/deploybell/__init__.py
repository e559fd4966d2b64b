"""deploybell: deploy manifests, watch the rollout, tell people how it went."""
