"""ReserveKit key authority: issues, checks, rotates and revokes ``sk_rsv_`` API keys."""

__version__ = "0.1.0"
