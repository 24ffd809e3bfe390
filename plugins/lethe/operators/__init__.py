"""Custom Airflow operators and sensors: thin, over hooks that do the I/O."""

from __future__ import annotations
