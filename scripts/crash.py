#!/usr/bin/env python3
"""Crash test: kill -9 pipit at random moments during QoS 1 and QoS 2 streams.

Each round starts the broker with `persistence true` on a fresh store directory, sets up a
retained message and a persistent subscriber, and streams numbered messages from a publisher
with a random window of messages in flight. At a random moment (after a random number of
acknowledgements, plus a random few milliseconds) the broker is killed with SIGKILL and
started again on the same store. Then:

  - the subscriber reconnects with clean session 0 and must get session present = 1;
  - a persistent publisher reconnects (session present = 1) and does what a real client does:
    re-sends every PUBLISH it has no PUBACK/PUBREC for with DUP set, re-sends PUBREL for
    those it has a PUBREC but no PUBCOMP for, then sends the rest of the stream;
  - a marker message is published; it reaches the subscriber only through the restored
    subscription, after everything queued before it;
  - the retained message must be back.

Every message whose PUBACK (QoS 1) or PUBREC (QoS 2) the publisher received must have been
delivered: QoS 1 at least once, QoS 2 exactly once. At QoS 2 no message may arrive twice at
all (the subscriber deduplicates by packet id as a receiver must, so a count above one is the
broker routing a message twice). Each round picks at random: QoS 1 or 2, MQTT 3.1.1 or 5.0,
subscriber online or offline during the stream, publisher with a persistent session or not.

Prints one line per round and a summary; exits non-zero on any violation, printing the seed
(`--seed`) that replays the same choices (the kill moments depend on timing too).

Usage: scripts/crash.py [BINARY] [--seed N] [--rounds N] [--budget SECONDS]
                        [--broker pipit|mosquitto] [--stop kill|term]
BINARY defaults to target/release/pipit (built by the caller; this script builds nothing).
`--broker mosquitto --stop term` runs the same rounds against Debian's Mosquitto with
persistence on, stopped with SIGTERM, when it saves: a check of this checker. There QoS 2
counts as acknowledged only at PUBCOMP, because Mosquitto routes a QoS 2 message at PUBREL
and forgets a clean session's unreleased ones. `--stop kill` against Mosquitto must fail.

Only 127.0.0.1; stops only the processes it started, by PID; bounded by --budget.
"""

import argparse
import collections
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
TOPIC = "crash/stream"
RETAINED = "crash/retained"
# Every socket read gives up after this long: a broker that stops answering fails the round.
TIMEOUT = 5.0
# A subscriber that has heard nothing for this long after the marker has everything.
IDLE = 0.3
SESSION_EXPIRY = 3600


class Violation(Exception):
    """A broken promise: the round fails with this message."""


# ---- MQTT packets, by hand ----

def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">H", len(b)) + b


def frame(header, body):
    return bytes([header]) + varint(len(body)) + body


def props(block):
    """A v5 property block: its length, then its bytes."""
    return varint(len(block)) + block


def connect_packet(v5, client_id, clean):
    flags = 0x02 if clean else 0x00
    body = string("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack(">H", 60)
    if v5:
        expiry = b"" if clean else b"\x11" + struct.pack(">I", SESSION_EXPIRY)
        body += props(expiry)
    return frame(0x10, body + string(client_id))


def publish_packet(v5, topic, payload, qos, packet_id, dup=False, retain=False):
    body = string(topic)
    if qos:
        body += struct.pack(">H", packet_id)
    if v5:
        body += props(b"")
    header = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return frame(header, body + payload)


def subscribe_packet(v5, packet_id, topic_filter, qos):
    body = struct.pack(">H", packet_id) + (props(b"") if v5 else b"")
    return frame(0x82, body + string(topic_filter) + bytes([qos]))


def ack_packet(header, packet_id):
    """PUBACK 0x40, PUBREC 0x50, PUBREL 0x62, PUBCOMP 0x70 (v5: reason 0 left out)."""
    return frame(header, struct.pack(">H", packet_id))


class Closed(Exception):
    """The broker closed the connection (or reset it)."""


class Conn:
    """One MQTT connection: sends whole packets, reads whole packets."""

    def __init__(self, port, v5):
        self.v5 = v5
        self.sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.lock = threading.Lock()

    def send(self, data):
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError as e:
                raise Closed(str(e)) from e

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise
            except OSError as e:
                raise Closed(str(e)) from e
            if not chunk:
                raise Closed("EOF")
            self.buf += chunk

    def recv(self, timeout=TIMEOUT):
        """(packet type, flags, body); raises socket.timeout or Closed."""
        self.sock.settimeout(timeout)
        self._fill(2)
        length, shift, at = 0, 0, 1
        while True:
            self._fill(at + 1)
            b = self.buf[at]
            length |= (b & 0x7F) << shift
            at += 1
            if not b & 0x80:
                break
            shift += 7
        self._fill(at + length)
        header = self.buf[0]
        body = bytes(self.buf[at:at + length])
        del self.buf[:at + length]
        return header >> 4, header & 0x0F, body

    def connect(self, client_id, clean):
        """Sends CONNECT; returns session present; raises Violation if refused."""
        self.send(connect_packet(self.v5, client_id, clean))
        kind, _, body = self.recv()
        if kind != 2 or body[1] != 0:
            raise Violation("%s: CONNACK %d %r" % (client_id, kind, body))
        return bool(body[0] & 1)

    def subscribe(self, topic_filter, qos):
        self.send(subscribe_packet(self.v5, 1, topic_filter, qos))
        while True:
            kind, _, body = self.recv()
            if kind == 9:
                if body[-1] != qos:
                    raise Violation("SUBACK %r for %s" % (body, topic_filter))
                return

    def parse_publish(self, flags, body):
        """(topic, payload, qos, packet id, dup, retain) of a PUBLISH body."""
        n = struct.unpack(">H", body[:2])[0]
        topic = body[2:2 + n].decode()
        at = 2 + n
        qos = (flags >> 1) & 3
        packet_id = 0
        if qos:
            packet_id = struct.unpack(">H", body[at:at + 2])[0]
            at += 2
        if self.v5:
            length, used = 0, 0
            while True:
                b = body[at + used]
                length |= (b & 0x7F) << (7 * used)
                used += 1
                if not b & 0x80:
                    break
            at += used + length
        return topic, body[at:], qos, packet_id, bool(flags & 8), bool(flags & 1)

    def close(self):
        # shutdown first: it wakes a read blocked on another thread, close alone does not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def reason(body):
    """The reason code of an acknowledgement (0 when left out, and in 3.1.1)."""
    return body[2] if len(body) > 2 else 0


# ---- the broker ----

class Broker:
    """The broker under test on a fixed port and store; killed by PID at the end."""

    def __init__(self, kind, binary, work):
        self.kind = kind
        self.binary = binary
        self.work = work
        self.port = free_port()
        self.store = os.path.join(work, "store")
        os.makedirs(self.store)
        self.conf = os.path.join(work, "broker.conf")
        # Run as root, both brokers switch to user mosquitto unless told not to, and could
        # then not write into the store directory root made.
        own = "user root\n"
        with open(self.conf, "w") as f:
            f.write("listener %d %s\nallow_anonymous true\n%spersistence true\n"
                    "persistence_location %s/\n" % (self.port, HOST, own, self.store))
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(os.path.join(self.work, "broker-%d.log" % self.starts), "w")
        argv = [MOSQUITTO if self.kind == "mosquitto" else self.binary, "-c", self.conf]
        env = dict(os.environ)
        env.pop("RUST_LOG", None)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise Violation("broker exited with %s at start:\n%s"
                                % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise Violation("broker did not listen:\n" + self.log())
            time.sleep(0.02)

    def stop(self, how):
        """SIGKILL or SIGTERM, then wait for the process to be gone."""
        if self.proc is None:
            return
        if how == "kill":
            self.proc.kill()
        else:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Violation("broker did not exit after SIG%s" % how.upper())
        finally:
            self.proc = None

    def log(self, lines=30):
        out = []
        for n in range(1, self.starts + 1):
            with open(os.path.join(self.work, "broker-%d.log" % n), errors="replace") as f:
                out.append("--- run %d\n%s" % (n, "".join(f.readlines()[-lines:])))
        return "".join(out)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---- the clients ----

class Subscriber:
    """The persistent subscriber: acknowledges as a receiver must and records each message
    it delivers to the application. At QoS 2 it keeps the packet ids it sent PUBREC for until
    PUBREL (across reconnects, as its session state), so a re-sent PUBLISH is not delivered
    twice by the client: a duplicate in `delivered` is the broker's."""

    def __init__(self, v5, qos):
        self.v5 = v5
        self.qos = qos
        self.delivered = []
        self.awaiting_rel = set()
        self.cond = threading.Condition()
        self.conn = None
        self.thread = None

    def connect(self, port):
        self.conn = Conn(port, self.v5)
        return self.conn.connect("crash-sub", clean=False)

    def run(self):
        """Reads on its own thread until the connection ends."""
        self.thread = threading.Thread(target=self._read, args=(self.conn,), daemon=True)
        self.thread.start()

    def _read(self, conn):
        while True:
            try:
                kind, flags, body = conn.recv(timeout=30)
            except (Closed, socket.timeout, OSError):
                return
            if kind == 14:
                return
            if kind == 3:
                topic, payload, qos, packet_id, _, _ = conn.parse_publish(flags, body)
                fresh = True
                if qos == 2:
                    fresh = packet_id not in self.awaiting_rel
                    self.awaiting_rel.add(packet_id)
                    reply = ack_packet(0x50, packet_id)
                elif qos == 1:
                    reply = ack_packet(0x40, packet_id)
                if fresh:
                    with self.cond:
                        self.delivered.append((topic, payload))
                        self.cond.notify_all()
                if qos:
                    try:
                        conn.send(reply)
                    except Closed:
                        return
            elif kind == 6:
                packet_id = struct.unpack(">H", body[:2])[0]
                self.awaiting_rel.discard(packet_id)
                try:
                    conn.send(ack_packet(0x70, packet_id))
                except Closed:
                    return

    def wait_for_marker(self, marker, timeout):
        """Waits until `marker` was delivered, then for IDLE more; False if it never came."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while (TOPIC, marker) not in self.delivered:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        time.sleep(IDLE)
        return True

    def close(self):
        if self.conn:
            self.conn.close()
        if self.thread:
            self.thread.join(5)


class Publisher:
    """Streams messages 1..n on TOPIC with at most `window` unacknowledged, recording what
    the broker acknowledged. At QoS 2 a PUBREC is answered with PUBREL."""

    def __init__(self, v5, qos, n, window, persistent, promise_at_pubcomp):
        self.v5 = v5
        self.qos = qos
        self.n = n
        self.window = window
        self.persistent = persistent
        self.promise_at_pubcomp = promise_at_pubcomp
        self.sent = set()
        self.acked = set()  # PUBACK, or PUBREC: the broker's promise
        self.completed = set()  # PUBACK, or PUBCOMP: the flow is over
        self.promised = set()  # what must be delivered
        self.cond = threading.Condition()
        self.conn = None
        self.error = None

    def connect(self, port):
        self.conn = Conn(port, self.v5)
        return self.conn.connect("crash-pub", clean=not self.persistent)

    def _outstanding(self):
        return len(self.sent) - len(self.completed)

    def _send(self, seq, dup=False):
        payload = b"%d" % seq
        self.conn.send(publish_packet(self.v5, TOPIC, payload, self.qos, seq, dup=dup))
        self.sent.add(seq)

    def stream(self, first):
        """Sends seq first..n, reading acknowledgements, until done or the connection ends."""
        seq = first
        try:
            while len(self.completed) < self.n:
                while seq <= self.n and self._outstanding() < self.window:
                    self._send(seq)
                    seq += 1
                self._read_one()
        except (Closed, socket.timeout, Violation) as e:
            self.error = e
        with self.cond:
            self.cond.notify_all()

    def _read_one(self):
        kind, _, body = self.conn.recv()
        if kind == 14:
            raise Closed("DISCONNECT %r" % body)
        packet_id = struct.unpack(">H", body[:2])[0]
        if kind in (4, 5) and reason(body) >= 0x80:
            raise Violation("packet %d refused with %#04x" % (packet_id, reason(body)))
        with self.cond:
            if kind == 4:
                self.acked.add(packet_id)
                self.completed.add(packet_id)
                self.promised.add(packet_id)
            elif kind == 5:
                self.acked.add(packet_id)
                if not self.promise_at_pubcomp:
                    self.promised.add(packet_id)
                self.conn.send(ack_packet(0x62, packet_id))
            elif kind == 7:
                self.completed.add(packet_id)
                self.promised.add(packet_id)
            self.cond.notify_all()

    def wait_acks(self, count):
        with self.cond:
            while len(self.acked) < count and self.error is None and \
                    len(self.completed) < self.n:
                self.cond.wait(TIMEOUT)

    def resume(self):
        """After the restart: re-send as a client must [MQTT-4.4.0-1], then finish."""
        for seq in sorted(self.sent - self.acked):
            self._send(seq, dup=True)
        for seq in sorted(self.acked - self.completed):
            self.conn.send(ack_packet(0x62, seq))
        self.stream(max(self.sent, default=0) + 1)


# ---- one round ----

def one_round(args, rng, number, work):
    """Runs one round; returns its report line. Raises Violation on a broken promise."""
    qos = rng.choice([1, 2])
    v5 = rng.choice([False, True])
    online = rng.choice([False, True])
    persistent = rng.choice([False, True])
    n = rng.randint(50, 400)
    window = rng.randint(1, 16)
    kill_after = rng.randint(0, n)
    extra_ms = rng.choice([0.0, rng.uniform(0, 5)])
    desc = "qos%d %s sub=%s pub=%s n=%d window=%d kill-after=%d+%.1fms" % (
        qos, "v5" if v5 else "v3", "online" if online else "offline",
        "persistent" if persistent else "clean", n, window, kill_after, extra_ms)

    broker = Broker(args.broker, args.binary, work)
    sub = Subscriber(v5, qos)
    pub = Publisher(v5, qos, n, window, persistent,
                    promise_at_pubcomp=(args.broker == "mosquitto"))
    try:
        broker.start()
        setup = Conn(broker.port, v5)
        setup.connect("crash-setup", clean=True)
        retained = b"retained %d" % number
        setup.send(publish_packet(v5, RETAINED, retained, 1, 1, retain=True))
        if setup.recv()[0] != 4:
            raise Violation("no PUBACK for the retained message")
        setup.close()

        if sub.connect(broker.port):
            raise Violation("a new subscriber session was present")
        sub.conn.subscribe(TOPIC, qos)
        if online:
            sub.run()
        else:
            sub.conn.send(b"\xe0\x00")
            sub.close()

        pub.connect(broker.port)
        streamer = threading.Thread(target=pub.stream, args=(1,), daemon=True)
        streamer.start()
        pub.wait_acks(kill_after)
        if extra_ms:
            time.sleep(extra_ms / 1000)
        broker.stop(args.stop)
        streamer.join(TIMEOUT + 1)
        if isinstance(pub.error, Violation):
            raise pub.error
        acked_before = len(pub.acked)
        sub.close()
        pub.conn.close()

        broker.start()
        if not sub.connect(broker.port):
            raise Violation("subscriber: session present = 0 after the restart")
        sub.run()
        if persistent:
            if not pub.connect(broker.port):
                raise Violation("publisher: session present = 0 after the restart")
            pub.resume()
            if isinstance(pub.error, Violation):
                raise pub.error
            if len(pub.completed) < n:
                raise Violation("the resumed publisher got %d of %d acknowledgements (%s)"
                                % (len(pub.completed), n, pub.error))
        marker_conn = Conn(broker.port, v5)
        marker_conn.connect("crash-marker", clean=True)
        marker = b"marker %d" % number
        marker_conn.send(publish_packet(v5, TOPIC, marker, 1, 1))
        if marker_conn.recv()[0] != 4:
            raise Violation("no PUBACK for the marker")
        marker_conn.close()
        if not sub.wait_for_marker(marker, 10):
            raise Violation("the marker never arrived: the subscription was lost")

        check_retained(broker.port, v5, retained)
        counts = collections.Counter(
            int(p) for t, p in sub.delivered if t == TOPIC and p != marker)
        check_deliveries(qos, n, pub.promised, counts)
        dups = sum(c - 1 for c in counts.values() if c > 1)
        return "%s: acked %d before the kill, %d promised, %d delivered (%d duplicates)" % (
            desc, acked_before, len(pub.promised), sum(counts.values()), dups)
    except Violation as e:
        raise Violation("%s: %s\n%s" % (desc, e, broker.log())) from None
    except (Closed, socket.timeout, OSError) as e:
        raise Violation("%s: connection failed: %r\n%s" % (desc, e, broker.log())) from None
    except (struct.error, IndexError, ValueError) as e:
        raise Violation("%s: malformed packet: %r\n%s" % (desc, e, broker.log())) from None
    finally:
        sub.close()
        if pub.conn:
            pub.conn.close()
        broker.stop("kill")


def check_retained(port, v5, expected):
    c = Conn(port, v5)
    try:
        c.connect("crash-retained", clean=True)
        c.send(subscribe_packet(v5, 1, RETAINED, 1))
        while True:
            kind, flags, body = c.recv()
            if kind == 3:
                topic, payload, _, _, _, retain = c.parse_publish(flags, body)
                if (topic, payload, retain) != (RETAINED, expected, True):
                    raise Violation("retained: got %r %r retain=%s" % (topic, payload, retain))
                return
    except socket.timeout:
        raise Violation("the retained message is gone") from None
    finally:
        c.close()


def check_deliveries(qos, n, promised, counts):
    phantoms = sorted(s for s in counts if not 1 <= s <= n)
    if phantoms:
        raise Violation("phantom messages %s" % phantoms[:10])
    missing = sorted(s for s in promised if counts[s] == 0)
    if missing:
        raise Violation("%d acknowledged messages lost, e.g. %s" % (len(missing), missing[:10]))
    if qos == 2:
        twice = sorted(s for s, c in counts.items() if c > 1)
        if twice:
            raise Violation("QoS 2 delivered more than once: %s" % twice[:10])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/pipit"))
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--min-rounds", type=int, default=50,
                   help="fail if the budget ends before this many rounds ran")
    p.add_argument("--budget", type=float, default=170.0,
                   help="seconds after which no new round starts")
    p.add_argument("--broker", choices=["pipit", "mosquitto"], default="pipit")
    p.add_argument("--stop", choices=["kill", "term"], default=None,
                   help="how the broker is stopped (default: kill; term for mosquitto)")
    args = p.parse_args()
    if args.stop is None:
        args.stop = "term" if args.broker == "mosquitto" else "kill"
    if args.broker == "pipit" and not os.access(args.binary, os.X_OK):
        sys.exit("crash.py: %s is not an executable (build it first)" % args.binary)
    if args.broker == "mosquitto" and not os.path.exists(MOSQUITTO):
        sys.exit("crash.py: %s is not installed" % MOSQUITTO)
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    print("crash.py: %s, stopped with %s, seed %d" % (
        args.broker if args.broker == "mosquitto" else args.binary, args.stop.upper(), seed))

    started = time.monotonic()
    failures = []
    ran = 0
    for number in range(1, args.rounds + 1):
        if time.monotonic() - started > args.budget:
            print("budget of %.0f s spent" % args.budget)
            break
        work = tempfile.mkdtemp(prefix="pipit-crash-")
        try:
            line = one_round(args, random.Random(rng.getrandbits(64)), number, work)
            print("round %d: ok %s" % (number, line), flush=True)
        except Violation as e:
            failures.append(number)
            print("round %d: VIOLATION %s" % (number, e), flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ran += 1
    elapsed = time.monotonic() - started
    print("%d rounds in %.0f s, %d with a violation%s; seed %d" % (
        ran, elapsed, len(failures), (" (rounds %s)" % failures) if failures else "", seed))
    if failures or ran < args.min_rounds:
        if ran < args.min_rounds:
            print("fewer than %d rounds ran" % args.min_rounds)
        print("reproduce: %s %s --seed %d --broker %s --stop %s" % (
            sys.argv[0], args.binary, seed, args.broker, args.stop))
        sys.exit(1)


if __name__ == "__main__":
    main()
