#!/bin/bash
# Creates the audit store's own database and role next to Airflow's metadata database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
CREATE ROLE sync_audit LOGIN PASSWORD '${AUDIT_DB_PASSWORD}';
CREATE DATABASE sync_audit OWNER sync_audit;
SQL
