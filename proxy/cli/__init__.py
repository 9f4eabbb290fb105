"""The command line: serve, detect, explain, invalidate."""
