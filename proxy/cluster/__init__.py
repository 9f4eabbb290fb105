"""Cluster mode: files in an S3 bucket, replicas coordinated through Redis."""
