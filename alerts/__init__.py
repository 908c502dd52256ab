"""Prometheus metrics for sandboxwatch, and the alerting rules generated from licences."""
