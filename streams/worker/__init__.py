"""The Faust worker: one small agent per stage (score, fan out, window, emit, detect, deliver), /metrics and /health."""
