"""Paper tables and plots from local run records: ``python -m ftaudit.report RUN_DIR...``."""
