"""Names shared by the CRDs, the operator and the objects it labels."""

from typing import Final

GROUP: Final = "deploybell.io"
VERSION: Final = "v1alpha1"

LABEL_JOB: Final = "deploybell.io/job"
LABEL_JOB_NAMESPACE: Final = "deploybell.io/job-namespace"
LABEL_RUN: Final = "deploybell.io/run"

ANNOTATION_CANCEL: Final = "deploybell.io/cancel"
ANNOTATION_REDEPLOY: Final = "deploybell.io/redeploy"

# `deploybell run --shard-key KEY` handles only DeployJobs with this label set to KEY; without the
# flag, only those without it (as Flux's sharding.fluxcd.io/key).
LABEL_SHARD: Final = "sharding.deploybell.io/key"

FIELD_MANAGER: Final = "deploybell"
FINALIZER: Final = "deploybell.io/finalizer"

# What a run tells its subscribers: "start", then exactly one of the other three.
EVENTS: Final[tuple[str, ...]] = ("start", "success", "failure", "cancel")
