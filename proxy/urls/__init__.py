"""The proxy's own URL space (pure): page paths and the links it gives to upstream files."""
