"""Lethe's development kit: never deployed, never imported by the engine.

The embedded stack (a real PostgreSQL, SFTP and S3-compatible server on loopback, and
Airflow as a local service on them), the synthetic telecom provider that seeds them, and
the demo. ``make`` installs it beside the engine (``plugins/lethe``) for the demo, the
tests and the benchmarks; the Docker image ships only the engine.
"""
