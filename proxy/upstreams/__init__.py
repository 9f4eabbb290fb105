"""Where pages and files come from: the HTTP upstream, merged project views, variant
metadata, remote wheel reads.
"""
