"""`make demo` on the embedded default (SQLite, filesystem broker): the dev store, the app, a worker and the
mail catcher start; a seeded store is installed through real OAuth, backfilled, and a live order's shipment
reaches the app. Runs the real command end to end, as a new user would."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_demo_installs_syncs_and_prints_the_urls(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["BOOMERANG_VAR_DIR"] = str(tmp_path / "var")
    ports = [str(free_port()) for _ in range(3)]
    result = subprocess.run(
        [sys.executable, "-m", "retention_app.demo", "--exit-after-setup",
         "--customers", "40", "--orders", "150",
         "--app-port", ports[0], "--store-port", ports[1], "--smtp-port", ports[2]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    synced = re.search(r"synced (\d+) customers, (\d+) orders and (\d+) products", result.stdout)
    assert synced, result.stdout[-3000:]
    assert synced.group(1, 2) == ("40", "150")
    assert int(synced.group(3)) > 0
    assert f"http://127.0.0.1:{ports[0]}/t/" in result.stdout
    assert f"http://127.0.0.1:{ports[1]}/_devstore/" in result.stdout
