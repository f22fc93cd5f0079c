"""Sync-state tests reuse the flow tests' fixtures: both simulators over HTTP, audit store on SQLite and Postgres."""

from flows.conftest import airflow_db, audit_url, dagbag, sims, store  # noqa: F401
