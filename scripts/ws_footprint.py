#!/usr/bin/env python3
"""What an idle WebSocket connection costs pipit, next to an idle TCP one.

The method of scripts/bench.sh's "user-space bytes per connection": the growth of the
broker's VmRSS while N idle MQTT 3.1.1 connections are held, divided by N. For each
transport a fresh broker (target/release/pipit, or $PIPIT_BIN) is started with one listener
of that kind; N clients connect (for WebSockets: the upgrade, then CONNECT in a masked
binary frame), each waits for its CONNACK, and VmRSS is read once all are connected and
idle. Prints one line per transport and the difference; exits 1 if a WebSocket connection
costs more than MAX_EXTRA bytes beyond a TCP one.

Usage: scripts/ws_footprint.py [N]   (default 10000; CI runs 2000)
"""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
BIN = os.environ.get("PIPIT_BIN", "target/release/pipit")
# What the WebSocket layer may add per idle connection before this check fails.
MAX_EXTRA = 512

CONNECT_BODY = b"\x00\x04MQTT\x04\x02\x00\x00"
UPGRADE = (
    b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
)


def connect_packet(i):
    client_id = b"fp-%d" % i
    body = CONNECT_BODY + len(client_id).to_bytes(2, "big") + client_id
    return bytes([0x10, len(body)]) + body


def masked(payload):
    mask = b"\x01\x02\x03\x04"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x82, 0x80 | len(payload)]) + mask + data


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock, needle):
    data = b""
    while needle not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"closed before {needle!r}: {data!r}")
        data += chunk
    return data


def measure(websockets):
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write("listener 0 127.0.0.1\nallow_anonymous true\nmax_connections -1\n")
    if websockets:
        conf.write("protocol websockets\n")
    conf.close()
    log = tempfile.TemporaryFile()
    broker = subprocess.Popen([BIN, "-c", conf.name], stderr=log, env={**os.environ, "RUST_LOG": "info"})
    clients = []
    try:
        port = None
        for _ in range(100):
            log.seek(0)
            found = re.search(rb"listening on [^ ]*:(\d+)", log.read())
            if found:
                port = int(found.group(1))
                break
            time.sleep(0.1)
        if port is None:
            raise RuntimeError("the broker did not report its port")
        time.sleep(0.5)
        before = rss_kib(broker.pid)
        for i in range(N):
            s = socket.create_connection(("127.0.0.1", port))
            if websockets:
                s.sendall(UPGRADE + masked(connect_packet(i)))
                reply = read_until(s, b"\r\n\r\n")
                if not reply.startswith(b"HTTP/1.1 101"):
                    raise RuntimeError(f"upgrade refused: {reply!r}")
                if len(reply.split(b"\r\n\r\n", 1)[1]) < 6:
                    read_until(s, b"\x20\x02\x00\x00")
            else:
                s.sendall(connect_packet(i))
                read_until(s, b"\x20\x02\x00\x00")
            clients.append(s)
        time.sleep(1)
        after = rss_kib(broker.pid)
        return (after - before) * 1024 / N
    finally:
        for s in clients:
            s.close()
        broker.terminate()
        broker.wait()
        os.unlink(conf.name)


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, N + 1000)), hard))
    tcp = measure(False)
    ws = measure(True)
    print(f"idle TCP connection:       {tcp:6.0f} bytes (VmRSS growth over {N} connections)")
    print(f"idle WebSocket connection: {ws:6.0f} bytes")
    print(f"WebSocket layer:           {ws - tcp:6.0f} bytes more")
    if ws - tcp > MAX_EXTRA:
        print(f"FAIL: more than {MAX_EXTRA} bytes beyond a TCP connection")
        sys.exit(1)


if __name__ == "__main__":
    main()
