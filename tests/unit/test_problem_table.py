"""The one table from a domain error to its answer (docs/errors.md, "Other errors")."""

from __future__ import annotations

import pytest

from reservekit.domain import errors
from reservekit.web.problems import InvalidParameter, ProblemKind, problem_kind


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        (errors.InvalidInput, ProblemKind(422, "Invalid input", "invalid_input")),
        (errors.NotFound, ProblemKind(404, "Not found", "not_found")),
        (errors.Conflict, ProblemKind(409, "Conflict", "conflict")),
        (errors.ConcurrentChange, ProblemKind(409, "Conflict", "conflict")),
        (errors.NotPermitted, ProblemKind(403, "Forbidden", "forbidden")),
        (InvalidParameter, ProblemKind(400, "Invalid request", "invalid_request")),
    ],
)
def test_each_domain_error_has_one_answer(error: type[errors.DomainError], answer: ProblemKind) -> None:
    assert problem_kind(error("why", field="f")) == answer


def test_the_domain_knows_no_http_status() -> None:
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.DomainError):
            assert not hasattr(value, "status"), name
