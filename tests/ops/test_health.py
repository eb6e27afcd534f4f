"""/healthz and /readyz as an orchestrator sees them."""

from __future__ import annotations

from bot import create_app
from storage import migrate


def test_healthz_answers_while_the_process_runs(client):
    assert client.get("/healthz").status_code == 200


def test_readyz_is_ready_when_the_database_answers_at_the_newest_schema(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["schema"] == "ok"
    assert response.json["dispatch"] == "running"


def test_readyz_is_not_ready_before_the_schema_is_created(app_config, tmp_path):
    app_config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    client = create_app(app_config).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "flask db upgrade" in response.json["checks"]["schema"]
    migrate.upgrade(app_config["DATABASE_URL"])
    assert client.get("/readyz").status_code == 200


def test_readyz_is_not_ready_when_the_database_is_unreachable(app_config):
    app_config["DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    response = create_app(app_config).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"].startswith("unavailable")


def test_readyz_stays_ready_with_redis_down_and_says_it_is_degraded(app_config):
    # Nothing listens on port 1: Redis is down; the webhook and sending go on without it.
    app_config["REDIS_URL"] = "redis://127.0.0.1:1/0"
    app_config["METRICS_TOKEN"] = "metrics-token"
    client = create_app(app_config).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"]["redis"].startswith("degraded: unavailable")
    metrics = client.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
    assert "optin_redis_up 0\n" in metrics.get_data(as_text=True)
