"""The dashboard's settings are read from the environment once, and bad values fail loudly."""

from __future__ import annotations

import pytest

from reservekit.settings import SettingsError, load_settings


def test_dashboard_defaults_and_overrides() -> None:
    default = load_settings({})
    assert (default.signup_open, default.secure_cookies) == (True, False)
    assert (default.session_idle_minutes, default.session_max_hours) == (60, 12)
    custom = load_settings(
        {
            "RESERVEKIT_SIGNUP": "closed",
            "RESERVEKIT_SECURE_COOKIES": "true",
            "RESERVEKIT_SESSION_IDLE_MINUTES": "15",
            "RESERVEKIT_SESSION_MAX_HOURS": "8",
            "RESERVEKIT_SIGN_IN_ATTEMPTS_PER_EMAIL_PER_MINUTE": "3",
        }
    )
    assert (custom.signup_open, custom.secure_cookies) == (False, True)
    assert (custom.session_idle_minutes, custom.session_max_hours) == (15, 8)
    assert custom.sign_in_attempts_per_email_per_minute == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESERVEKIT_SIGNUP", "maybe"),
        ("RESERVEKIT_SESSION_IDLE_MINUTES", "0"),
        ("RESERVEKIT_SECURE_COOKIES", "x"),
    ],
)
def test_bad_dashboard_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
