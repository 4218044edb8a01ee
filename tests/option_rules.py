"""Checks shared by the option-object tests: every field has bad values listed, and each bad value is
refused with an InsertAnywhereError naming the option, the value and the valid range."""

import dataclasses

import pytest

from insertanywhere.errors import InsertAnywhereError


def assert_every_field_listed(cls, bad: dict) -> None:
    assert set(bad) == {field.name for field in dataclasses.fields(cls)}


def assert_bad_values_refused(cls, name: str, values: list, valid: str,
                              named: str = "{cls}.{name} = {value!r}") -> None:
    """named: how the message names the option and its value (format fields cls, name, value)."""
    for value in values:
        with pytest.raises(InsertAnywhereError) as caught:
            cls(**{name: value})
        message = str(caught.value)
        assert named.format(cls=cls.__name__, name=name, value=value) in message and valid in message, message
