"""The usage log: one row per request (refused ones too), written in batches off the request path."""
