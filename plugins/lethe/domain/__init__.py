"""The domain: what retention and subject rights reason about, below every store and the
control schema: cutoffs, protections (holds and restrictions), identity values and their
hashing, and the counts a store reports. Nothing here does I/O or imports Airflow.

Import arrows point one way: dags -> operators -> subjects/export/report -> stores/control
-> domain/policy (``tests/test_architecture.py`` holds the contracts).
"""
