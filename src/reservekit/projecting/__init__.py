"""The projection engine: runs the modules in ``projections/`` over the logs."""
