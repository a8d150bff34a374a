"""Pure domain logic: ``decide(command, state) -> events`` and ``evolve(state, event) -> state``. No I/O."""
