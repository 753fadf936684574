"""``python -m modelyard_tenant`` serves the API with settings from the environment and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_until_sigterm(settings, app):
    port = free_port()
    env = {
        **os.environ,
        "MODELYARD_API_HOST": "127.0.0.1",
        "MODELYARD_API_PORT": str(port),
        "MODELYARD_MONGO__URL": settings.mongo.url,
        "MODELYARD_MONGO__DATABASE": settings.mongo.database,
        "MODELYARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "MODELYARD_KAFKA__PARTITIONS": "1",
        "MODELYARD_TOPICS__PREFIX": settings.topics.prefix,
        "MODELYARD_ADMIN_TOKEN": settings.admin_token,
        "MODELYARD_JWT_SECRET": settings.jwt_secret,
    }
    proc = subprocess.Popen([sys.executable, "-m", "modelyard_tenant"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # not listening yet: poll again until the deadline
        assert ready is not None and ready.json() == {"ready": True, "mongo": "ok", "kafka": "ok"}, proc.poll()
        admin = {"Authorization": f"Bearer {settings.admin_token}"}
        body = {"organization_name": "Served", "admin_email": "a@b.co", "industry": "other", "subscription_tier": "basic"}
        assert httpx.post(f"{base}/v1/tenants", json=body, headers=admin, timeout=10).status_code == 201
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        output = proc.stdout.read().decode()
        assert code == 0, output
        assert "Application shutdown complete" in output  # the lifespan closed the broker and the database
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
