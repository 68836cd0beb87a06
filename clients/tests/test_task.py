from __future__ import annotations

import numpy as np
import pytest
import torch

from clients.datasets import split_train_test, standardize
from clients.task import build_model, evaluate, train
from clients.tests.helpers import breast_cancer


def test_local_training_reaches_good_held_out_accuracy_in_a_few_epochs() -> None:
    X, y, _ = breast_cancer()
    X_train, X_test, y_train, y_test = split_train_test(X.astype(np.float32), y)
    X_train, X_test = standardize(X_train, X_test)
    torch.manual_seed(0)
    model = build_model(X.shape[1], 2)

    first_loss = train(model, X_train, y_train, epochs=1, lr=0.01)
    last_loss = train(model, X_train, y_train, epochs=3, lr=0.01)
    loss, accuracy = evaluate(model, X_test, y_test)

    assert last_loss < first_loss
    assert accuracy > 0.85
    assert 0 < loss < 1


def test_the_models_initial_weights_follow_the_torch_seed() -> None:
    torch.manual_seed(3)
    a = build_model(4, 3, hidden=8).state_dict()
    torch.manual_seed(3)
    b = build_model(4, 3, hidden=8).state_dict()

    assert list(a) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["4.weight"].shape == (3, 8)


def test_evaluate_returns_an_accuracy_between_0_and_1() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=50)

    loss, accuracy = evaluate(build_model(4, 3), X, y)

    assert 0.0 <= accuracy <= 1.0
    assert loss > 0


def test_training_with_the_same_seed_is_reproducible() -> None:
    X, y, _ = breast_cancer()
    X = standardize(X[:100], X[:1])[0]

    def run() -> float:
        torch.manual_seed(1)
        return train(build_model(X.shape[1], 2), X, y[:100], epochs=2, lr=0.01, seed=5)

    assert run() == run()


def test_it_refuses_zero_epochs() -> None:
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0"):
        train(build_model(2, 2), np.zeros((4, 2)), np.zeros(4), epochs=0, lr=0.1)
