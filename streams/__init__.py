"""The streaming pipeline: decode, classify, tag, window; the Faust app that wires it."""
