"""The HTTP side: the output folder served as files, with the probes and metrics endpoints."""
