"""Use cases: commands, one handler each, and `Application.execute`, the one door for every write."""
