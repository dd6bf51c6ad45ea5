"""The process runtime: settings, worker processes, metrics, logs, process tuning, heap."""
