"""The simple repository API as data (pure): names, file names, the page model, PEP 503 HTML,
PEP 691 JSON, negotiation.
"""
