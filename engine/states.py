"""Lifecycle states and their allowed transitions, in one place."""

from __future__ import annotations

from enum import StrEnum

from engine.errors import Conflict


class DeploymentStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    ACTIVE = "active"
    RETIRED = "retired"


class Activation(StrEnum):
    """How a deployment went live (``deployment.activated_via``, also in its ``deployment.active`` event)."""

    CHANGE_CONTROL = "change_control"  # approved by a change-control instance (approved_by_instance_id)
    INIT = "init"                      # the first version of a shipped model, activated by ``gmpflow init``
    DIRECT = "direct"                  # deployed with change control off (or by a test's own set-up)


class InstanceStatus(StrEnum):
    RUNNING = "running"      # engine work pending (a job is due)
    WAITING = "waiting"      # waits for a person, a timer or a message
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    TERMINATED = "terminated"
    FAILED = "failed"        # an incident is open


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"        # retries exhausted: an incident is open
    CANCELLED = "cancelled"


class MasterDataStatus(StrEnum):
    """A master-data version: edited as a draft, frozen from review on, in force once effective.

    ``in_review → draft`` returns a version for rework (a rejected change request); ``obsolete``
    withdraws a version that never became effective, or retires the one in force without successor.
    Only ``engine.masterdata.make_effective`` (called by the change-control process) makes a version
    effective; it supersedes the previous one in the same transaction.
    """

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    EFFECTIVE = "effective"
    SUPERSEDED = "superseded"
    OBSOLETE = "obsolete"


class MessageStatus(StrEnum):
    PENDING = "pending"
    MATCHED = "matched"
    EXPIRED = "expired"


TRANSITIONS: dict[type[StrEnum], dict[StrEnum, set[StrEnum]]] = {
    DeploymentStatus: {
        DeploymentStatus.DRAFT: {DeploymentStatus.IN_REVIEW, DeploymentStatus.ACTIVE,
                                 DeploymentStatus.RETIRED},
        DeploymentStatus.IN_REVIEW: {DeploymentStatus.ACTIVE, DeploymentStatus.DRAFT,
                                     DeploymentStatus.RETIRED},
        DeploymentStatus.ACTIVE: {DeploymentStatus.RETIRED},
        DeploymentStatus.RETIRED: set(),
    },
    InstanceStatus: {
        InstanceStatus.RUNNING: {InstanceStatus.WAITING, InstanceStatus.SUSPENDED, InstanceStatus.COMPLETED,
                                 InstanceStatus.TERMINATED, InstanceStatus.FAILED, InstanceStatus.RUNNING},
        InstanceStatus.WAITING: {InstanceStatus.RUNNING, InstanceStatus.SUSPENDED, InstanceStatus.COMPLETED,
                                 InstanceStatus.TERMINATED, InstanceStatus.FAILED, InstanceStatus.WAITING},
        InstanceStatus.FAILED: {InstanceStatus.RUNNING, InstanceStatus.WAITING, InstanceStatus.SUSPENDED,
                                InstanceStatus.TERMINATED, InstanceStatus.COMPLETED, InstanceStatus.FAILED},
        InstanceStatus.SUSPENDED: {InstanceStatus.RUNNING, InstanceStatus.WAITING, InstanceStatus.FAILED,
                                   InstanceStatus.TERMINATED},
        InstanceStatus.COMPLETED: set(),
        InstanceStatus.TERMINATED: set(),
    },
    MasterDataStatus: {
        MasterDataStatus.DRAFT: {MasterDataStatus.IN_REVIEW, MasterDataStatus.OBSOLETE},
        MasterDataStatus.IN_REVIEW: {MasterDataStatus.EFFECTIVE, MasterDataStatus.DRAFT,
                                     MasterDataStatus.OBSOLETE},
        MasterDataStatus.EFFECTIVE: {MasterDataStatus.SUPERSEDED, MasterDataStatus.OBSOLETE},
        MasterDataStatus.SUPERSEDED: set(),
        MasterDataStatus.OBSOLETE: set(),
    },
    TaskState: {
        TaskState.OPEN: {TaskState.CLAIMED, TaskState.COMPLETED, TaskState.CANCELLED},
        TaskState.CLAIMED: {TaskState.OPEN, TaskState.COMPLETED, TaskState.CANCELLED},
        TaskState.COMPLETED: set(),
        TaskState.CANCELLED: set(),
    },
}


def check_transition(current: str, target: StrEnum, what: str) -> None:
    """Raise Conflict (code ``<what>_not_<target>able``-style) when ``current → target`` is not allowed."""
    enum = type(target)
    if target not in TRANSITIONS[enum][enum(current)]:
        raise Conflict(f"The {what} is {current}; it cannot become {target}.",
                       code=f"{what}_{current}", current=current, requested=str(target))
