"""fairness layer of equisynth (see docs/architecture.md)."""
