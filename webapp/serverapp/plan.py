"""What the round loop knows about its job, read from the database before it starts."""

from dataclasses import dataclass


@dataclass(frozen=True)
class JobPlan:
    job_id: int
    total_rounds: int
    min_clients: int
    feature_names: list[str]
    classes: list[str]
    target: str
    hidden_size: int


@dataclass(frozen=True)
class Timeouts:
    node_wait: float  # for every site to identify its node before round 1
    round: float  # from a round's push to its deadline
    node_check: float  # between two reads of the SuperLink's node list
