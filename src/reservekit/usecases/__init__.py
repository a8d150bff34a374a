"""Use cases: read a stream, decide, append. The API and the CLI both call these, nothing else writes."""
