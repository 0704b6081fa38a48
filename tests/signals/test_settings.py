"""The strategy's parameters come from settings.SIGNAL_PARAMS; a bad value names the setting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from signals.rules import VoteParams
from signals.services import configured_params


def test_defaults_are_the_documented_strategy() -> None:
    assert configured_params() == VoteParams()


def test_settings_change_the_threshold_and_cooldown(settings: Any) -> None:
    settings.SIGNAL_PARAMS = {**settings.SIGNAL_PARAMS, "threshold": "0.45", "cooldown": "5"}
    params = configured_params()
    assert (params.threshold, params.cooldown) == (Decimal("0.45"), 5)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"threshold": "high"}, "SIGNAL_PARAMS['threshold'] must be a decimal"),
        ({"cooldown": "1.5"}, "SIGNAL_PARAMS['cooldown'] must be a whole number"),
        ({"treshold": "0.3"}, "unknown keys ['treshold']"),
        ({"threshold": "0"}, "the threshold > 0"),
    ],
)
def test_a_bad_setting_is_a_clear_error(settings: Any, change: dict[str, str], words: str) -> None:
    settings.SIGNAL_PARAMS = {**settings.SIGNAL_PARAMS, **change}
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        configured_params()
