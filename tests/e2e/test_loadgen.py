"""The load generator (loadgen/locustfile.py) in a short headless run against its own ``up``.

Bounded: about ten seconds of load after the start. Needs the ``loadgen``
extra (Locust), which .ci/run installs; without it the test is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import up_process

pytestmark = pytest.mark.loadgen

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadgen" / "locustfile.py"


@pytest.mark.skipif(
    importlib.util.find_spec("locust") is None, reason="needs the loadgen extra (Locust)"
)
def test_shoppers_and_sellers_run_without_failures(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with up_process(data_dir) as running:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(LOCUSTFILE),
                "--headless",
                "--host",
                running.gateway_url,
                "--users",
                "8",
                "--spawn-rate",
                "8",
                "--run-time",
                "10s",
                "--think-min",
                "0.05",
                "--think-max",
                "0.3",
                "--seller-share",
                "0.25",
                "--decline-rate",
                "0.3",
                "--json",
                "--skip-log",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = {(s["method"], s["name"]): s for s in json.loads(result.stdout)}
    failures = {key: s["num_failures"] for key, s in stats.items() if s["num_failures"]}
    assert not failures, failures
    # every kind of shopper and seller step happened
    for key in [
        ("POST", "/auth/signup"),
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/search/products"),
        ("POST", "/api/v1/cart/items"),
        ("POST", "/api/v1/orders"),
        ("POST", "/api/v1/orders/{id}/payment"),
        ("PUT", "/api/v1/products/{id}/stock (update)"),
    ]:
        assert stats.get(key, {}).get("num_requests", 0) > 0, f"no {key} in {sorted(stats)}"
