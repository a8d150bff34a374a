"""The lifecycle event log: types, hash chain, store, verification."""
