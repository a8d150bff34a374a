"""The ``reservekit`` command line: the same use cases as the API, no second code path."""
