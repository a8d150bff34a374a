"""The dashboard: server-rendered pages under ``/dashboard`` (see docs/dashboard.md)."""
