"""docker-compose.yaml is a valid Compose file with the full stack (validated offline: no Docker engine here)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_CANDIDATES = [ROOT.parent / "shared/schemas/compose-spec.json", ROOT / "tests/data/compose-spec.json"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    for path in SCHEMA_CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    pytest.fail(f"compose-spec.json not found in {SCHEMA_CANDIDATES}")


def test_compose_file_validates_against_the_compose_spec(compose, schema):
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_validator_rejects_a_broken_file(compose, schema):
    broken = json.loads(json.dumps(compose))
    broken["services"]["airflow-worker"]["depends_on"]["redis"]["condition"] = "healthy_please"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_full_stack_services_present(compose):
    expected = {
        "postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
        "airflow-triggerer", "airflow-worker", "airflow-init", "fxiaoke-sim", "k3cloud-sim",
    }
    assert expected <= set(compose["services"])


def test_celery_executor_examples_off_and_secrets_from_env(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    assert env["AIRFLOW__CORE__FERNET_KEY"].startswith("${FERNET_KEY")
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"].startswith("${AIRFLOW_JWT_SECRET")
    assert "./include:/opt/airflow/include" in compose["services"]["airflow-worker"]["volumes"]


def test_env_example_lists_every_variable_the_compose_file_requires(compose):
    import re

    required = set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "docker-compose.yaml").read_text()))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line and not line.startswith("#")}
    assert required <= example, f"missing from .env.example: {required - example}"


def test_image_is_built_from_the_dockerfile_with_the_constraints(compose):
    assert compose["services"]["airflow-worker"]["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-c /opt/project/constraints-3.11.txt" in dockerfile
    assert "FROM apache/airflow:3.3.2" in dockerfile
