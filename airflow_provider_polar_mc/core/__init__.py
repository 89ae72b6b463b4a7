"""The provider's Airflow-free core: everything here runs without a scheduler and must not import
``airflow`` (enforced by ``tests/unit/test_import_boundaries.py``)."""
