"""What the server and every site must derive the same way, and the training config both
read and write."""

import hashlib

from clients.protocol import TrainConfig, site_key, sort_labels


def test_site_key_is_the_first_16_hex_chars_of_the_tokens_sha256() -> None:
    assert site_key("abc") == hashlib.sha256(b"abc").hexdigest()[:16]
    assert len(site_key("x")) == 16


def test_sort_labels_orders_numbers_numerically_and_text_alphabetically() -> None:
    assert sort_labels(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert sort_labels(["malignant", "benign"]) == ["benign", "malignant"]


def test_a_training_config_reads_back_what_the_server_wrote() -> None:
    config = {
        TrainConfig.SERVER_ROUND: 3,
        **TrainConfig.job_values(
            local_epochs=2,
            learning_rate=0.05,
            feature_names=["age", "bmi"],
            classes=["benign", "malignant"],
            hidden_size=16,
        ),
        **TrainConfig.client_values(client_id="client_0a1b2c3d", dataset_name="bc"),
    }

    assert TrainConfig.from_config(config) == TrainConfig(
        server_round=3,
        client_id="client_0a1b2c3d",
        dataset_name="bc",
        local_epochs=2,
        learning_rate=0.05,
        feature_names=["age", "bmi"],
        classes=["benign", "malignant"],
        hidden_size=16,
    )
    assert all(isinstance(value, int | float | str) for value in config.values())
