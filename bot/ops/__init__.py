"""What operators watch: /healthz and /readyz for load balancers, /metrics for Prometheus."""
