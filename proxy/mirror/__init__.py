"""Mirrors and offline operation: `mirror`, `export`, `import`, static export, offline views."""
