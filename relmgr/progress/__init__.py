"""How far a release has come and how it compares: its timeline, finish estimate and history."""
