"""The Grafana dashboard and the scrape config speak the platform's real metric names."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
METRIC_MODULES = ("shared.telemetry", "services.loans.handlers.jobs",
                  "services.notifications.metrics")


def exported_metric_names() -> set[str]:
    for module in METRIC_MODULES:  # importing a module registers its metrics
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        for sample in family.samples:
            names.add(sample.name)
    return names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "noria-platform.json").read_text())
    return data


def test_every_noria_metric_the_dashboard_queries_is_exported() -> None:
    exported = exported_metric_names()
    queried = set()
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            queried |= set(re.findall(r"\bnoria_[a-z_]+", target["expr"]))
    assert queried, "the dashboard queries no Noria metric"
    unknown = {m for m in queried
               if m not in exported and not any(m.removesuffix(s) in exported for s in SUFFIXES)}
    assert not unknown, sorted(unknown)


def test_the_dashboard_covers_lag_outbox_dead_letters_and_latency() -> None:
    exprs = " ".join(t["expr"] for p in dashboard()["panels"] for t in p.get("targets", []))
    for metric in ("noria_consumer_lag", "noria_outbox_backlog", "noria_dead_letters_total",
                   "noria_http_request_seconds_bucket"):
        assert metric in exprs, metric
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_the_scrape_config_targets_each_service_with_its_label() -> None:
    config = yaml.safe_load((GRAFANA / "prometheus-local.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "noria")
    assert job["metrics_path"] == "/metrics"
    targets = {c["labels"]["service"]: c["targets"][0] for c in job["static_configs"]}
    assert targets == {"clients": "127.0.0.1:8101", "loans": "127.0.0.1:8102",
                       "payments": "127.0.0.1:8103", "notifications": "127.0.0.1:8104",
                       "savings": "127.0.0.1:8105"}
