"""Put first on PYTHONPATH, it hides the installed OpenTelemetry API (benchmarks/ingest.py)."""

raise ImportError("opentelemetry is hidden for this benchmark row")
