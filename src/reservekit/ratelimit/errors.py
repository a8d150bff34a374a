"""Errors raised by rate limiters."""

from __future__ import annotations


class RateLimiterUnavailable(Exception):
    """The shared rate-limit store could not answer (unreachable, timed out, refused the command).

    The original redis error is chained as ``__cause__``. The caller decides whether to fail open
    (serve the request without a limit) or fail closed (answer 503).
    """
