"""Prometheus metrics for both services: the `/metrics` HTTP endpoint (http), the gRPC
server metrics every service shares (grpc), and the LM-usage metrics both record (lm).

Each running server has its own `CollectorRegistry` (tests run several servers in one
process; the global REGISTRY would mix them and refuse a second registration).
"""
