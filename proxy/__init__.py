"""variant-proxy: a caching simple-API proxy that serves each client its best wheel variant."""

__version__ = "0.1.0"
