"""A real Prometheus server (Debian's `prometheus`) scraping an exporter over HTTPS, and its HTTP API."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from metricsdata import ADMIN, InProcessExporter

WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, binary: Path, directory: Path, exporter: InProcessExporter) -> None:
        (directory / "password").write_text(ADMIN[1])
        (directory / "wrong").write_text("not-the-password")
        target = f"127.0.0.1:{exporter.port}"
        job = ("  - job_name: {name}\n    scheme: https\n    basic_auth:\n      username: {user}\n"
               "      password_file: {pw}\n    tls_config:\n      ca_file: {ca}\n"
               "    static_configs:\n      - targets: ['{target}']\n")
        config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + job.format(
            name="singbox", user=ADMIN[0], pw=directory / "password", ca=exporter.ca, target=target) + job.format(
            name="intruder", user=ADMIN[0], pw=directory / "wrong", ca=exporter.ca, target=target)
        (directory / "prometheus.yml").write_text(config)
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), f"--config.file={directory / 'prometheus.yml'}",
                 f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.proc.poll() is None, f"prometheus exited:\n{self.log.read_text()}"
            try:
                if httpx.get(f"{self.api}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"prometheus not ready:\n{self.log.read_text()}"
            time.sleep(0.2)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.api}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    def wait_value(self, expr: str, want: float) -> None:
        deadline = time.monotonic() + WAIT_S
        last: object = None
        while time.monotonic() < deadline:
            result = self.query(expr)
            last = result
            if result and float(result[0]["value"][1]) == want:
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr} did not become {want} within {WAIT_S} s: {last}\n{self.log.read_text()[-3000:]}")

    def targets(self) -> dict[str, dict[str, Any]]:
        body = httpx.get(f"{self.api}/api/v1/targets", timeout=10).json()
        return {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
