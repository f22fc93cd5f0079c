"""Alembic revision scripts of the audit store, one per schema change, never edited once released."""
