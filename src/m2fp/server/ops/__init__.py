"""Process telemetry: the audit log, Prometheus metrics, the memory watchdog and its alerts."""
