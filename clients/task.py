"""The model and its local training: plain PyTorch, shared by the ClientApp and the server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

# Sites train side by side on small machines: one thread each avoids oversubscribing cores.
torch.set_num_threads(1)


def build_model(n_features: int, n_classes: int, hidden: int = 32) -> nn.Module:
    """An MLP for tabular data; its initial weights follow `torch.manual_seed`."""
    return build_model_from(
        {"name": "mlp", "hidden_layers": [hidden, hidden]}, n_features, n_classes
    )


def train(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int,
    lr: float,
    batch_size: int = 32,
    seed: int = 0,
) -> float:
    """Train in place with Adam; return the mean loss over the last epoch."""
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if len(X) == 0:
        raise ValueError("cannot train on an empty set")
    features, labels = _tensors(X, y)
    # Adam converges on standardized tabular data within a few epochs without per-dataset
    # tuning of the learning rate; a federated round gives each site only a few epochs.
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    generator = torch.Generator().manual_seed(seed)
    model.train()
    epoch_loss = 0.0
    for _ in range(epochs):
        epoch_loss = 0.0
        for batch in torch.randperm(len(features), generator=generator).split(batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(features[batch]), labels[batch])
            (loss / len(batch)).backward()
            optimizer.step()
            epoch_loss += loss.item()
    return epoch_loss / len(features)


def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(mean cross-entropy loss, accuracy in [0, 1])."""
    if len(X) == 0:
        raise ValueError("cannot evaluate on an empty set")
    features, labels = _tensors(X, y)
    model.eval()
    with torch.no_grad():
        logits = model(features)
        loss = nn.functional.cross_entropy(logits, labels).item()
        accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return loss, accuracy


def _tensors(X: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(np.asarray(X, dtype=np.float32)),
        torch.as_tensor(np.asarray(y, dtype=np.int64)),
    )


# The architectures a job can choose, by the name its `model` setting gives.
MODEL_NAMES = ("mlp", "logistic_regression")
DEFAULT_MODEL: dict = {"name": "mlp", "hidden_layers": [32, 32]}


def build_model_from(settings: Mapping[str, Any], n_features: int, n_classes: int) -> nn.Module:
    """The model a job's `model` setting describes: `{"name": "mlp", "hidden_layers": [32, 32]}`
    or `{"name": "logistic_regression"}`. The model file records the same settings."""
    name = settings.get("name", "mlp")
    if name == "logistic_regression":
        return nn.Sequential(nn.Linear(n_features, n_classes))
    if name != "mlp":
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    layers: list[nn.Module] = []
    width = n_features
    for hidden in settings.get("hidden_layers", DEFAULT_MODEL["hidden_layers"]):
        layers += [nn.Linear(width, int(hidden)), nn.ReLU()]
        width = int(hidden)
    return nn.Sequential(*layers, nn.Linear(width, n_classes))
