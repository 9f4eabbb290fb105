"""PEP 825/817 (pure): properties, variants.json, ordering, fingerprints and specs,
providers, page rewriting.
"""
