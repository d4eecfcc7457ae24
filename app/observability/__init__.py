"""Observability: structured logs, Prometheus metrics and instrumented port proxies."""
