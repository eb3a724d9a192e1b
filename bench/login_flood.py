#!/usr/bin/env python3
"""Unauthenticated login flood against a running kpbxd's management API.

    bench/login_flood.py HOST:PORT STORE_DIR PID [COUNT] [THREADS] [WARMUP]

Sends COUNT logins (default 100,000), each a new TLS connection (session
resumed, so the flood is not limited by our own handshakes) from a random
loopback source address (127.x.y.z) with a random user name and password:
what an attacker without an account can do. Prints the answers by status,
after WARMUP logins (default 5,000) at the same concurrency, so
that connection buffers are at their high-water mark, the growth of the store file (STORE_DIR/data.mdb; `store` under the data dir) and of the daemon's RSS
(/proc/PID/status VmRSS) over the run, and the rate.

With KPBX_USER and KPBX_PASSWORD set (an account of the daemon), that
account logs in from 127.0.0.1 before the flood (so the address is known
to it), in mid-flood and after, and the script prints whether and how fast it got
in: a flood must not lock an administrator out of the address it uses.

Issue 17 bounds: store growth <= 1 MiB, RSS growth <= 1 MiB.
"""

import collections
import json
import os
import random
import socket
import ssl
import sys
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def store_bytes(store_dir):
    # The LMDB file grows in pages; its size is what the flash sees.
    return os.stat(os.path.join(store_dir, "data.mdb")).st_size


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    port = int(port)
    store_dir, pid = sys.argv[2], int(sys.argv[3])
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    warmup = int(sys.argv[6]) if len(sys.argv) > 6 else 5_000

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # session ids/tickets resume simply

    statuses = collections.Counter()
    lock = threading.Lock()
    next_i = [0]
    session = [None]

    def one(rng):
        src = f"127.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randrange(4, 33)))
        body = json.dumps({"user": name, "password": os.urandom(8).hex()}).encode()
        raw = socket.create_connection((host, port), timeout=30, source_address=(src, 0))
        try:
            s = ctx.wrap_socket(raw, server_hostname="kpbxd", session=session[0])
            if session[0] is None or not s.session_reused:
                session[0] = s.session
            s.sendall(
                b"POST /api/v1/login HTTP/1.1\r\nHost: kpbxd\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "no-answer"
            s.close()
        except (OSError, ssl.SSLError) as e:
            status = f"error:{type(e).__name__}"
        finally:
            raw.close()
        return status

    def worker(seed):
        rng = random.Random(seed)
        while True:
            with lock:
                if next_i[0] >= count:
                    return
                next_i[0] += 1
            st = one(rng)
            with lock:
                statuses[st] += 1

    account = (os.environ.get("KPBX_USER"), os.environ.get("KPBX_PASSWORD"))

    def admin_login():
        t = time.monotonic()
        raw = socket.create_connection((host, port), timeout=30, source_address=("127.0.0.1", 0))
        s = ctx.wrap_socket(raw, server_hostname="kpbxd")
        body = json.dumps({"user": account[0], "password": account[1]}).encode()
        s.sendall(
            b"POST /api/v1/login HTTP/1.1\r\nHost: kpbxd\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        head = s.recv(4096)
        s.close()
        return head.split(b" ", 2)[1].decode(), time.monotonic() - t

    if account[0]:
        print("account login before the flood: %s in %.2f s" % admin_login())

    rss_start = rss_kib(pid)
    if warmup:
        limit = count
        count = warmup
        ws = [threading.Thread(target=worker, args=(1000 + i,)) for i in range(threads)]
        for t in ws:
            t.start()
        for t in ws:
            t.join()
        count = limit
        next_i[0] = 0
        print(f"warm-up: {warmup} logins, rss {rss_start} -> {rss_kib(pid)} KiB")
        statuses.clear()
    store0, rss0 = store_bytes(store_dir), rss_kib(pid)
    t0 = time.monotonic()
    during = []

    def admin_during():
        while next_i[0] < count // 2:
            time.sleep(0.05)
        during.append(admin_login())

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    if account[0]:
        ts.append(threading.Thread(target=admin_during))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.monotonic() - t0
    time.sleep(1)
    store1, rss1 = store_bytes(store_dir), rss_kib(pid)
    print(f"logins: {count} in {took:.0f} s ({count / took:.0f}/s), {threads} clients")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    print(f"store: {store0} -> {store1} bytes (+{store1 - store0})")
    print(f"rss: {rss0} -> {rss1} KiB (+{rss1 - rss0})")
    if account[0]:
        print("account login in mid-flood from its known address: %s in %.2f s" % during[0])
        status, took = admin_login()
        print(f"account login after the flood from its known address: {status} in {took:.2f} s")
    ok = (not account[0] or status == during[0][0] == "200") and store1 - store0 <= 1 << 20 and (rss1 - rss0) <= 1024
    print("within issue 17's bounds (1 MiB each)" if ok else "OVER the 1 MiB bounds")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
