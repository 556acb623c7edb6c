"""Pure alerting: spike detection over window statistics, alert formats and webhook delivery."""
