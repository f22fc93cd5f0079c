# Airflow image with this project's provider and pinned dependencies (used by docker-compose.yaml).
# requirements.txt pins apache-airflow-providers-celery, celery, kombu and redis: the image runs the
# CeleryExecutor with exactly the versions tests/distributed/ proves, not whatever the base image ships.
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root requirements.txt constraints-3.11.txt /opt/project/
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /opt/project/requirements.txt -c /opt/project/constraints-3.11.txt

# The provider (hooks, connection types, mapping engine, audit store) and the simulators.
COPY --chown=airflow:root pyproject.toml README.md /opt/project/
COPY --chown=airflow:root plugins /opt/project/plugins
COPY --chown=airflow:root simulators /opt/project/simulators
RUN pip install --no-cache-dir --no-deps /opt/project
ENV PYTHONPATH=/opt/project
