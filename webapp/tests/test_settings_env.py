"""config.env: settings read from the environment fail loudly on values they cannot use."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_float, env_int


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_it_uses_the_default_when_a_number_is_unset_or_blank(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("FEDTRACK_TEST_NUMBER", raising=False)
    else:
        monkeypatch.setenv("FEDTRACK_TEST_NUMBER", raw)

    assert env_int("FEDTRACK_TEST_NUMBER", 7, minimum=1) == 7
    assert env_float("FEDTRACK_TEST_NUMBER", 2.5, minimum=0) == 2.5


def test_it_reads_numbers_at_or_above_their_minimum(monkeypatch):
    monkeypatch.setenv("FEDTRACK_TEST_NUMBER", "3")

    assert env_int("FEDTRACK_TEST_NUMBER", 7, minimum=3) == 3
    assert env_float("FEDTRACK_TEST_NUMBER", 2.5, minimum=3) == 3.0


@pytest.mark.parametrize(
    ("read", "raw", "message"),
    [
        (env_int, "ten", "FEDTRACK_TEST_NUMBER='ten' is not an integer"),
        (env_int, "1.5", "FEDTRACK_TEST_NUMBER='1.5' is not an integer"),
        (env_int, "0", "FEDTRACK_TEST_NUMBER=0 must be at least 1"),
        (env_float, "ten", "FEDTRACK_TEST_NUMBER='ten' is not a number"),
        (env_float, "0.5", "FEDTRACK_TEST_NUMBER=0.5 must be a finite number >= 1"),
        (env_float, "inf", "FEDTRACK_TEST_NUMBER=inf must be a finite number >= 1"),
    ],
)
def test_it_refuses_a_number_it_cannot_use(monkeypatch, read, raw, message):
    monkeypatch.setenv("FEDTRACK_TEST_NUMBER", raw)

    with pytest.raises(ImproperlyConfigured) as refused:
        read("FEDTRACK_TEST_NUMBER", 7, minimum=1)

    assert str(refused.value) == message
