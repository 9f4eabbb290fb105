"""End-to-end tests: a real proxy between real installers and a real loopback upstream."""
