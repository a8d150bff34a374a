"""The security team's read side: the audit trail, key states as of an instant, signed checkpoints."""
