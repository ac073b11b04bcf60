"""The long-running process: scheduled jobs, watching the store, health, metrics and status."""
