"""Lethe: a privacy statement's retention rules and data-subject rights, enforced by Airflow.

The engine package. It knows policies, stores and the privacy ledger; it defines no DAGs.
"""

from __future__ import annotations

__version__ = "0.1.0"
