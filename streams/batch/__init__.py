"""Offline work on files and topic ranges: sources, sinks and rescoring with a new model (no faust)."""
