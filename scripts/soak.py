#!/usr/bin/env python3
"""Soak test: thousands of sessions created and left to expire, against the release binary.

    python3 scripts/soak.py [seconds, default 600] [new sessions per second, default 50]

Starts its own server on a free loopback port (lifetime 5 s, sweep every 2 s), logs in new
sessions every second, keeps a few of them busy, and every 10 s samples: session files on
disk, sessions that should be alive, the server's resident memory and open file descriptors.
It stops by itself and stops the server it started (by its pid). Exit code 1 if files on disk
stop tracking live sessions or memory / descriptors keep growing.
"""
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

LIFETIME, SWEEP = 5, 2
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.port, self.cookies = port, {}

    def request(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        text = res.read().decode("utf-8", "replace")
        for name, value in res.getheaders():
            if name.lower() == "set-cookie":
                k, _, rest = value.partition("=")
                v = rest.split(";", 1)[0]
                if v and "Max-Age=0" not in value:
                    self.cookies[k] = v
                else:
                    self.cookies.pop(k, None)
        conn.close()
        return res.status, text

    def login(self, user):
        _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _ = self.request("POST", "/login", f"user_id={user}&password=soak-password&csrf_token={token}")
        return status


def proc_sample(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    duration = int(sys.argv[1]) if len(sys.argv) > 1 else 600
    rate = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "session-server"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="soak.", dir=os.path.join(ROOT, "target"))
    port = free_port()
    sessions = os.path.join(work, "sessions")
    with open(os.path.join(work, "config.toml"), "w") as f:
        f.write(f'[server]\nbind = "127.0.0.1:{port}"\nworkers = 2\n[session]\nlifetime = {LIFETIME}\n'
                f'[session.filesystem]\ncleanup_interval = "{SWEEP}s"\n'
                f'[auth]\nbcrypt_cost = 4\nmax_failed_logins = 1000000\n')
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([os.path.join(ROOT, "target/release/session-server"), "--config",
                               os.path.join(work, "config.toml")], stderr=log, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(200):
            try:
                if Client(port).request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        c = Client(port)
        _, page = c.request("GET", "/register")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        c.request("POST", "/register", f"user_id=soak&user_name=Soak&password=soak-password&repassword=soak-password&csrf_token={token}")

        start, made, samples, last_used = time.time(), 0, [], {}
        busy = []  # a few sessions kept alive the whole time
        next_sample = start + 10
        print(f"{'t(s)':>5} {'made':>7} {'alive':>6} {'files':>6} {'RSS MiB':>8} {'fds':>4}")
        while time.time() - start < duration:
            tick = time.time()
            for _ in range(rate):
                client = Client(port)
                if client.login("soak") == 303:
                    made += 1
                    last_used[made] = time.time()
                    if len(busy) < 20:
                        busy.append((made, client))
            for number, client in busy:
                if client.request("GET", "/")[0] == 200:
                    last_used[number] = time.time()
            now = time.time()
            if now >= next_sample:
                alive = sum(1 for t in last_used.values() if now - t < LIFETIME)
                files = sum(1 for n in os.listdir(sessions) if n.endswith(".json"))
                rss, fds = proc_sample(server.pid)
                samples.append((now - start, made, alive, files, rss, fds))
                print(f"{now - start:5.0f} {made:7d} {alive:6d} {files:6d} {rss:8.1f} {fds:4d}", flush=True)
                next_sample += 10
                last_used = {k: t for k, t in last_used.items() if now - t < LIFETIME + SWEEP + 5}
            time.sleep(max(0.0, 1.0 - (time.time() - tick)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    # Verdict: files never exceed what may legitimately be on disk (alive + what expired since
    # the last sweep + one more sweep of slack); memory and descriptors flat after warm-up.
    ok = True
    bound = lambda alive: alive + rate * (LIFETIME + 2 * SWEEP + 2)
    for t, made_, alive, files, rss, fds in samples:
        if files > bound(alive):
            print(f"files on disk ({files}) outgrew live sessions ({alive}) at {t:.0f} s"); ok = False
    steady = samples[len(samples) // 3:] or samples
    if steady:
        rss_growth = steady[-1][4] - steady[0][4]
        fd_growth = steady[-1][5] - steady[0][5]
        print(f"sessions made: {made}; files at end: {samples[-1][3]}; RSS {steady[0][4]:.1f} -> {steady[-1][4]:.1f} MiB;"
              f" fds {steady[0][5]} -> {steady[-1][5]}")
        if rss_growth > 20 or fd_growth > 5:
            print("memory or descriptors kept growing"); ok = False
    print("soak:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
