"""The dashboard's members: Argon2id password hashes and sessions, as plain rows beside the log."""
