#!/usr/bin/env python3
"""Smoke test of the README's run command: `cargo run -p devstack` starts, prints a dev JWT, takes
a payment and settles it through the simulator's callback. Ports are picked free on loopback;
the stack is stopped at the end whatever happens (it also has a hard time limit)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, token=None, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main():
    api, sim = free_port(), free_port()
    log_path = os.path.join("target", "devstack-smoke.log")
    os.makedirs("target", exist_ok=True)
    with open(log_path, "w") as log:
        stack = subprocess.Popen(
            ["cargo", "run", "-q", "-p", "devstack", "--",
             "--listen", f"127.0.0.1:{api}", "--simulator-listen", f"127.0.0.1:{sim}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{api}"
    try:
        token = None
        deadline = time.monotonic() + 600  # includes compiling the dev stack on a cold cache
        while time.monotonic() < deadline and token is None:
            if stack.poll() is not None:
                raise SystemExit(f"the dev stack exited with {stack.returncode}; see {log_path}")
            match = re.search(r"export TOKEN=(\S+)", open(log_path).read())
            token = match.group(1) if match else None
            time.sleep(0.5)
        if token is None:
            raise SystemExit(f"the dev stack printed no dev JWT; see {log_path}")

        status, health = request("GET", f"{base}/v1/health")
        assert status == 200 and health["status"] == "ok", (status, health)

        status, payment = request(
            "POST", f"{base}/v1/payments", token,
            {"amount": 100, "phone": "0712345678", "reference": "SMOKE1"},
            {"Idempotency-Key": "smoke-1"},
        )
        assert status == 202, (status, payment)
        payment_id = payment["id"]

        settle_by = time.monotonic() + 30
        while time.monotonic() < settle_by:
            status, current = request("GET", f"{base}/v1/payments/{payment_id}", token)
            assert status == 200, (status, current)
            if current["status"] == "completed":
                print(f"dev stack OK: {payment_id} completed with receipt {current['mpesa_receipt']}")
                return
            time.sleep(0.5)
        raise SystemExit(f"payment {payment_id} did not complete within 30 s: {current}")
    except BaseException:
        print("--- last lines of the dev stack's output ---", file=sys.stderr)
        print("".join(open(log_path).readlines()[-20:]), file=sys.stderr)
        raise
    finally:
        stop(stack)


def stop(stack):
    """Stops the stack's whole process group (cargo and the dev stack it started)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(stack.pid, sig)
        except ProcessLookupError:
            return
        try:
            stack.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    sys.exit(main())
