"""Request authentication: the in-memory key view and the middleware that consults it."""
