"""Webhook delivery: signing secrets at rest, SSRF checks, the sender and the dispatcher."""
