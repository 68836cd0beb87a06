"""The job's global model: its first weights and the file it is saved to. The one module of
the ServerApp that touches torch and the sites' model definition (`clients.task`)."""

from pathlib import Path

import torch
from flwr.app import ArrayRecord

from clients.task import build_model
from webapp.serverapp.plan import JobPlan


def initial_arrays(plan: JobPlan) -> ArrayRecord:
    """The same first model for the same job, whoever runs it."""
    torch.manual_seed(plan.job_id)
    model = build_model(len(plan.feature_names), len(plan.classes), plan.hidden_size)
    return ArrayRecord(model.state_dict())


def save_model(plan: JobPlan, arrays: ArrayRecord, rounds: int, model_dir: Path) -> Path:
    """Save the model with what a reader needs to use it (features, classes, target)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"job_{plan.job_id}.pt"
    torch.save(
        {
            "state_dict": arrays.to_torch_state_dict(),
            "feature_names": plan.feature_names,
            "classes": plan.classes,
            "target": plan.target,
            "hidden_size": plan.hidden_size,
            "rounds": rounds,
        },
        path,
    )
    return path
