"""kstatus rules for the controllers that roll out pods: apps/v1 workloads and batch/v1 Job."""

from deploybell.deploy.health_model import ApiObject, Health, field_at, plural

# The Deployment controller reads an unset progressDeadlineSeconds, and MaxInt32, as "never".
_NO_PROGRESS_DEADLINE = 2**31 - 1


def deployment_health(deployment: ApiObject) -> Health:
    """Health of an apps/v1 Deployment whose latest generation has been observed."""
    progressing = deployment.condition("Progressing")
    if (
        progressing is not None
        and progressing.reason == "ProgressDeadlineExceeded"
        and not progressing.is_true
    ):
        return deployment.failed(
            "ProgressDeadlineExceeded", f"progress deadline exceeded: {progressing.message}"
        )
    lagging = _deployment_replicas_lagging(deployment)
    if lagging:
        return deployment.in_progress(lagging)
    # Counts can match a moment before the controller confirms the rollout; kstatus waits for
    # the conditions too. Without a progress deadline the controller never sets Progressing.
    deadline = deployment.number("spec.progressDeadlineSeconds", _NO_PROGRESS_DEADLINE)
    has_deadline = deadline != _NO_PROGRESS_DEADLINE
    if has_deadline and (progressing is None or progressing.reason != "NewReplicaSetAvailable"):
        return deployment.in_progress("waiting for the new ReplicaSet to be reported available")
    available = deployment.condition("Available")
    if available is None or not available.is_true:
        return deployment.in_progress("waiting for the Available condition")
    replicas = deployment.number("status.replicas", 0)
    return deployment.current(f"{plural(replicas, 'replica')} updated and available")


def _deployment_replicas_lagging(deployment: ApiObject) -> str:
    """What the replica counts are still waiting for, or "" when they all match."""
    wanted = deployment.number("spec.replicas", 1)
    replicas = deployment.number("status.replicas", 0)
    updated = deployment.number("status.updatedReplicas", 0)
    available = deployment.number("status.availableReplicas", 0)
    ready = deployment.number("status.readyReplicas", 0)
    if updated < wanted:
        return f"{updated}/{wanted} replicas updated"
    if replicas > min(updated, wanted):
        old = replicas - min(updated, wanted)
        return f"{plural(old, 'old replica')} pending termination"
    if available < updated:
        return f"{available} of {updated} updated replicas are available"
    if ready < wanted:
        return f"{ready} of {wanted} replicas are ready"
    return ""


def statefulset_health(statefulset: ApiObject) -> Health:
    """Health of an apps/v1 StatefulSet whose latest generation has been observed."""
    if statefulset.text("spec.updateStrategy.type") == "OnDelete":
        # Pods change only when someone deletes them, so there is no rollout to wait for.
        return statefulset.current("uses the OnDelete update strategy; nothing rolls out")
    wanted = statefulset.number("spec.replicas", 1)
    replicas = statefulset.number("status.replicas", 0)
    ready = statefulset.number("status.readyReplicas", 0)
    if replicas < wanted:
        return statefulset.in_progress(f"{replicas}/{wanted} replicas created")
    if ready < wanted:
        return statefulset.in_progress(f"{ready} of {wanted} replicas are ready")
    if replicas > wanted:
        extra = plural(replicas - wanted, "extra replica")
        return statefulset.in_progress(f"{extra} pending termination")
    partition = statefulset.number("spec.updateStrategy.rollingUpdate.partition", 0)
    if partition > 0:
        return _partitioned_rollout_health(statefulset, wanted, partition)
    return _full_rollout_health(statefulset, wanted)


def _partitioned_rollout_health(statefulset: ApiObject, wanted: int, partition: int) -> Health:
    """A partition holds back ordinals below it; only the ones at or above it must update."""
    updated = statefulset.number("status.updatedReplicas", 0)
    to_update = max(wanted - partition, 0)
    progress = f"{updated}/{to_update} replicas updated (partition {partition})"
    if updated < to_update:
        return statefulset.in_progress(progress)
    return statefulset.current(f"partitioned rollout complete: {progress}")


def _full_rollout_health(statefulset: ApiObject, wanted: int) -> Health:
    """Every replica must run the update revision and the controller must have promoted it."""
    updated = statefulset.number("status.updatedReplicas", 0)
    if updated < wanted:
        return statefulset.in_progress(f"{updated}/{wanted} replicas updated")
    current_revision = statefulset.text("status.currentRevision")
    update_revision = statefulset.text("status.updateRevision")
    if current_revision != update_revision:
        return statefulset.in_progress(
            f"waiting for revision {update_revision} to replace {current_revision}"
        )
    return statefulset.current(f"{plural(wanted, 'replica')} ready at revision {update_revision}")


def daemonset_health(daemonset: ApiObject) -> Health:
    """Health of an apps/v1 DaemonSet whose latest generation has been observed."""
    # The generic check skips objects without observedGeneration; a DaemonSet always gets one
    # once its controller has looked, so its absence means the counts below are not real yet.
    if daemonset.number("status.observedGeneration", -1) == -1:
        return daemonset.in_progress("not yet observed by the DaemonSet controller")
    desired = daemonset.number("status.desiredNumberScheduled", -1)
    if desired == -1:
        return daemonset.in_progress("the controller has not counted the nodes yet")
    counts = (
        ("currentNumberScheduled", "{0}/{1} pods scheduled"),
        ("updatedNumberScheduled", "{0}/{1} pods updated"),
        ("numberAvailable", "{0} of {1} pods are available"),
        ("numberReady", "{0} of {1} pods are ready"),
    )
    for field, template in counts:
        count = daemonset.number(f"status.{field}", 0)
        if count < desired:
            return daemonset.in_progress(template.format(count, desired))
    return daemonset.current(f"{plural(desired, 'pod')} updated and ready")


def replicaset_health(replicaset: ApiObject) -> Health:
    """Health of an apps/v1 ReplicaSet whose latest generation has been observed."""
    failure = replicaset.condition("ReplicaFailure")
    if failure is not None and failure.is_true:
        # kstatus keeps this InProgress: quota or admission may relent, and the run's deadline
        # bounds the wait. The message carries the cause for whoever reads it.
        return replicaset.in_progress(f"cannot create pods: {failure.explain()}")
    wanted = replicaset.number("spec.replicas", 1)
    counts = (
        ("fullyLabeledReplicas", "{0}/{1} replicas fully labeled"),
        ("availableReplicas", "{0} of {1} replicas are available"),
        ("readyReplicas", "{0} of {1} replicas are ready"),
    )
    for field, template in counts:
        count = replicaset.number(f"status.{field}", 0)
        if count < wanted:
            return replicaset.in_progress(template.format(count, wanted))
    replicas = replicaset.number("status.replicas", 0)
    if replicas > wanted:
        extra = plural(replicas - wanted, "extra replica")
        return replicaset.in_progress(f"{extra} pending termination")
    return replicaset.current(f"{plural(wanted, 'replica')} available")


def job_health(job: ApiObject) -> Health:
    """Health of a batch/v1 Job: Failed and Complete are final, anything else is still running."""
    failed = job.condition("Failed")
    if failed is not None and failed.is_true:
        return job.failed("JobFailed", f"failed with {failed.explain()}")
    succeeded = job.number("status.succeeded", 0)
    completions = job.number("spec.completions", job.number("spec.parallelism", 1))
    complete = job.condition("Complete")
    if complete is not None and complete.is_true:
        return job.current(f"completed, {succeeded}/{completions} succeeded")
    suspended = job.condition("Suspended")
    if suspended is not None and suspended.is_true:
        # kstatus calls a suspended Job Current; a deploy waits on what the Job does, and a
        # suspended one has not done it yet.
        return job.in_progress("is suspended")
    if not field_at(job.raw, "status.startTime"):
        return job.in_progress("not started yet")
    active = job.number("status.active", 0)
    failures = job.number("status.failed", 0)
    return job.in_progress(
        f"running: {succeeded}/{completions} succeeded, {active} active, {failures} failed"
    )
