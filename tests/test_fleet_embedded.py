"""The embedded collector never loads fleet mode: no ``deskcorder.fleet``, no nats-py, in its process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# A whole embedded round in a fresh interpreter: every CLI command's module, a store, the app, a batch
# refused for want of a device credential, and the health check; then what got imported.
_EMBEDDED_ROUND = textwrap.dedent("""
    import json, sys
    import deskcorder.cli
    from fastapi.testclient import TestClient
    from deskcorder.collect import create_app
    from deskcorder.store import EventStore

    with EventStore(sys.argv[1]) as store:
        client = TestClient(create_app(store))
        answers = [client.get("/v1/health").status_code,
                   client.post("/v1/batches", content=b"{}", headers={"Content-Type": "application/json"}).status_code]
    loaded = sorted(m for m in sys.modules if m.split(".")[0] == "nats" or m.startswith("deskcorder.fleet"))
    print(json.dumps({"answers": answers, "loaded": loaded}))
""")


def test_the_embedded_collector_runs_without_importing_fleet_mode(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _EMBEDDED_ROUND, str(tmp_path / "data")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["answers"] == [200, 401]
    assert seen["loaded"] == []

