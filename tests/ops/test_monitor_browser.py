"""The monitor page rendered by a real headless browser (skipped where chromium is not installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fxiaoke_k3cloud.monitor.app import create_app

from .fill import fill_history

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed")


def serve(store, port: int) -> tuple[object, threading.Thread]:  # type: ignore[no-untyped-def]
    """The monitor app on 127.0.0.1 without authentication: demo data only, never the real store."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(lambda: store, dependencies=[]), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/", timeout=2).ok:
                return server, thread
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("monitor app did not start")


def screenshot(url: str, target: Path, size: str = "1280,900") -> None:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             f"--screenshot={target}", f"--window-size={size}", url],
            check=True, capture_output=True, timeout=60,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def monitor_url(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    from simproc import free_port

    store = fill_history(f"sqlite:///{tmp_path / 'audit.db'}")
    port = free_port()
    server, thread = serve(store, port)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True  # type: ignore[attr-defined]
    thread.join(10)
    store.dispose()


def test_page_renders_in_chromium(monitor_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = tmp_path / "monitor.png"
    screenshot(monitor_url, png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a blank page is a few KB; charts and tables are far more
    # The DOM the browser built: the charts are there and no script from CRM data ran or exists.
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", monitor_url + "record?q=6600000000000000000000a1"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout
    assert "<script>" not in dom and "&lt;script&gt;" in dom


if __name__ == "__main__":  # python tests/ops/test_monitor_browser.py docs/monitor.png — refresh the screenshot
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/monitor.png").resolve()
    with tempfile.TemporaryDirectory() as tmp:
        demo = fill_history(f"sqlite:///{tmp}/audit.db")
        srv, th = serve(demo, 18870)
        screenshot("http://127.0.0.1:18870/?flow=orders", target, "1280,1700")
        srv.should_exit = True  # type: ignore[attr-defined]
        th.join(10)
    print(f"wrote {target} ({target.stat().st_size} bytes)")
