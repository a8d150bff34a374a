"""Moved to ``reservekit.background``; this name stays only for ``auth/key_view.py``, which imports it."""

from reservekit.background import WakeUp, stop_loop, wait_for_wakeup

__all__ = ["WakeUp", "stop_loop", "wait_for_wakeup"]
