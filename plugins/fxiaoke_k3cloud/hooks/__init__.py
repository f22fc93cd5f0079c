"""Airflow hooks: the only code that speaks HTTP to Fxiaoke and K3Cloud."""
