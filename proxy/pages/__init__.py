"""The page cache: raw upstream pages with their validators."""
