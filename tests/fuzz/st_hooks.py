"""Schemathesis hooks for the fuzz run (loaded with SCHEMATHESIS_HOOKS=tests.fuzz.st_hooks).

The fuzzer holds one operator key. It must not revoke or rotate that key, or downgrade its account,
half-way through: any case aimed at them is pointed at an id that does not exist instead (the route
is still exercised, and answers 404).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

PROTECTED = {
    "key_id": os.environ.get("FUZZ_PROTECTED_KEY_ID", ""),
    "account_id": os.environ.get("FUZZ_PROTECTED_ACCOUNT_ID", ""),
}


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    del context, kwargs
    parameters = case.path_parameters or {}
    for name, protected in PROTECTED.items():
        if protected and parameters.get(name) == protected and case.method.upper() in ("POST", "PATCH"):
            parameters[name] = f"{name.split('_')[0]}_doesnotexist"
