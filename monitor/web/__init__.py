"""The built-in dashboard: live aggregates, the latest headlines, alerts, and analyst feedback."""
