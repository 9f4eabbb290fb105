"""The file store: policy (single flight, verify, LRU) over where the bytes are kept."""
