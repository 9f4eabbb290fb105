"""The aiohttp application: routes, errors to HTTP in one place, metrics, logs."""
