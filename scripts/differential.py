#!/usr/bin/env python3
"""Differential test: the same client scenarios against pipit and the real Mosquitto.

Each scenario gets a fresh pipit and a fresh Mosquitto (Debian's /usr/sbin/mosquitto) on
loopback ports, both started from the same config text; its clients (mosquitto_pub,
mosquitto_sub, Eclipse Paho in 3.1.1 mode, raw sockets) do the same things to each, and
what every subscriber received -- topic, payload, QoS and RETAIN of each message, in
order -- is compared. Exits non-zero if any scenario differs, printing the differences.

Scenarios: the rows of issue 10's table (mosquitto_pub -l at QoS 0; a publish loop; 5,000
retained under 'ret/#'; 20,000 retained under '#', with and without max_queued_messages),
retained messages with QoS downgrade, overlapping subscriptions, clearing a retained
message, '$' topics against '#' and '+', and a will on an abrupt close.

The broker is target/release/pipit (built here), or the binary named by PIPIT_BIN.
Installs paho-mqtt (pip), mosquitto-clients and mosquitto (apt) if missing. Stops the
brokers it started, by PID.
"""

import difflib
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
HOST = "127.0.0.1"
MOSQUITTO = "/usr/sbin/mosquitto"
# A subscriber that has received nothing for this long is taken as finished.
IDLE = 2.0


def apt_install(package):
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if subprocess.call(["apt-get", "install", "-y", package], **quiet) != 0:
        subprocess.check_call(["apt-get", "update"], **quiet)
        subprocess.check_call(["apt-get", "install", "-y", package], **quiet)


def install_dependencies():
    try:
        import paho.mqtt  # noqa: F401
    except ImportError:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "paho-mqtt>=2,<3"])
    if not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")):
        apt_install("mosquitto-clients")
    if not os.path.exists(MOSQUITTO):
        apt_install("mosquitto")


install_dependencies()

import paho.mqtt.client as mqtt  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def record(topic, payload, qos, retain):
    """One received message as a line of the comparison."""
    return "%s %r q%d r%d" % (topic, payload, qos, int(retain))


class Broker:
    """A broker process started from `conf` (its listener line added) on a free port."""

    def __init__(self, name, argv, conf):
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="differential-")
        path = os.path.join(self.dir, "broker.conf")
        with open(path, "w") as f:
            f.write("listener %d %s\nallow_anonymous true\nlog_dest stderr\n%s\n"
                    % (self.port, HOST, conf))
        self.log = open(os.path.join(self.dir, "broker.log"), "w+")
        self.proc = subprocess.Popen(argv + ["-c", path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise SystemExit("FAIL: %s did not start:\n%s" % (name, self.tail()))
                time.sleep(0.05)

    def tail(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Collector:
    """Messages arriving on another thread, in order, and a wait for them to stop."""

    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    def add(self, line):
        with self.cond:
            self.messages.append(line)
            self.cond.notify_all()

    def collect(self, expected=None, idle=IDLE, extra=0.3):
        """Waits until `expected` messages arrived and then `extra` seconds more for any
        beyond them, or until none came for `idle` seconds; returns them all."""
        with self.cond:
            while True:
                before = len(self.messages)
                if expected is not None and before >= expected:
                    idle = extra
                self.cond.wait_for(lambda: len(self.messages) > before, idle)
                if len(self.messages) == before:
                    return list(self.messages)


class PahoSub(Collector):
    """A Paho 3.1.1 client subscribed to `filters` [(filter, qos)]."""

    def __init__(self, port, client_id, filters):
        super().__init__()
        self.subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311)
        self.c.on_message = lambda c, u, m: self.add(
            record(m.topic, m.payload.decode(errors="replace"), m.qos, m.retain))
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect(HOST, port, 30)
        self.c.loop_start()
        self.c.subscribe(filters)
        if not self.subscribed.wait(10):
            raise SystemExit("FAIL: no SUBACK for %s" % client_id)

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


class MosquittoSub(Collector):
    """`mosquitto_sub ARGS`, returned once it has its SUBACK."""

    def __init__(self, port, args):
        super().__init__()
        subscribed = threading.Event()
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", HOST, "-p", str(port),
             "-F", "M %q %r %t %p", "-W", "60"] + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, errors="replace")

        def read():
            for line in self.proc.stdout:
                line = line.rstrip("\n")
                if "received SUBACK" in line:
                    subscribed.set()
                elif line.startswith("M "):
                    qos, retain, topic, *payload = line[2:].split(" ", 3)
                    self.add(record(topic, "".join(payload), int(qos), retain == "1"))

        threading.Thread(target=read, daemon=True).start()
        if not subscribed.wait(10):
            self.stop()
            raise SystemExit("FAIL: mosquitto_sub %s got no SUBACK" % args)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def paho_client(port, client_id):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                    protocol=mqtt.MQTTv311)
    c.connect(HOST, port, 30)
    c.loop_start()
    return c


def publish_all(c, messages):
    """Publishes (topic, payload, qos, retain) tuples in order; waits for them all."""
    infos = [c.publish(t, p, qos=q, retain=r) for t, p, q, r in messages]
    for info in infos:
        info.wait_for_publish(10)
        if not info.is_published():
            raise SystemExit("FAIL: publish not completed")


# --- raw MQTT 3.1.1, for pipelined retained stores and abrupt closes ----------------------

def varint(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def packet(header, body):
    return bytes([header]) + varint(len(body)) + body


def mqtt_string(b):
    return struct.pack(">H", len(b)) + b


def raw_connect(port, client_id, will=None):
    """A raw 3.1.1 connection after CONNACK; `will` is (topic, payload, qos, retain)."""
    flags, tail = 0x02, b""
    if will:
        topic, payload, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        tail = mqtt_string(topic.encode()) + mqtt_string(payload.encode())
    s = socket.create_connection((HOST, port), 10)
    body = mqtt_string(b"MQTT") + bytes([4, flags]) + struct.pack(">H", 60)
    s.sendall(packet(0x10, body + mqtt_string(client_id.encode()) + tail))
    if s.recv(4) != b"\x20\x02\x00\x00":
        raise SystemExit("FAIL: CONNACK refused for %s" % client_id)
    return s


def ping_barrier(s):
    """PINGREQ, then wait for PINGRESP: everything sent before it has been handled."""
    s.sendall(b"\xc0\x00")
    got = b""
    s.settimeout(60)
    while not got.endswith(b"\xd0\x00"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("FAIL: connection closed before PINGRESP")
        got += chunk


def store_retained(port, topics):
    """Stores retained messages (payload = index) on `topics`, pipelined on one connection."""
    s = raw_connect(port, "populate")
    s.sendall(b"".join(packet(0x31, mqtt_string(t.encode()) + str(i).encode())
                       for i, t in enumerate(topics)))
    ping_barrier(s)
    s.sendall(b"\xe0\x00")
    s.close()


# --- scenarios: each returns {subscriber: [records]} -------------------------------------

def lines_qos0(port):
    """`mosquitto_sub -t lines` running, then `seq 5000 | mosquitto_pub -l -t lines`."""
    sub = MosquittoSub(port, ["-t", "lines", "-C", "5000"])
    subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(port), "-l", "-t", "lines"],
                   input="".join("%d\n" % i for i in range(1, 5001)), text=True, check=True)
    got = sub.collect(5000)
    sub.stop()
    return {"mosquitto_sub lines": got}


def publish_loop(port):
    """5,000 QoS 0 publishes from a client's loop, all queued before the client writes."""
    sub = PahoSub(port, "loop-sub", [("loop", 0)])
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="loop-pub",
                    protocol=mqtt.MQTTv311)
    c.connect(HOST, port, 30)
    for i in range(5000):
        c.publish("loop", str(i), qos=0)
    c.loop_start()
    got = sub.collect(5000)
    c.disconnect()
    c.loop_stop()
    sub.stop()
    return {"paho loop": got}


def retained_5000(port):
    """5,000 retained topics, then `mosquitto_sub -t 'ret/#'`."""
    store_retained(port, ["ret/%05d" % i for i in range(5000)])
    sub = MosquittoSub(port, ["-t", "ret/#", "-C", "5000"])
    got = sub.collect(5000)
    sub.stop()
    return {"mosquitto_sub ret/#": got}


def retained_hash(port, n=20000):
    """`n` retained topics, then `mosquitto_sub -t '#'` (topics stored in topic order)."""
    store_retained(port, ["big/%06d" % i for i in range(n)])
    sub = MosquittoSub(port, ["-t", "#", "-C", str(n)])
    got = sub.collect(n)
    sub.stop()
    return {"mosquitto_sub #": got}


def retained_downgrade(port):
    """Retained at QoS 0, 1 and 2; subscribers at QoS 0, 1 and 2 get min(message, sub)."""
    c = paho_client(port, "rq-pub")
    publish_all(c, [("rq/%d" % q, "at %d" % q, q, True) for q in range(3)])
    got = {}
    for q in range(3):
        sub = PahoSub(port, "rq-sub-%d" % q, [("rq/#", q)])
        got["sub at QoS %d" % q] = sub.collect(3)
        sub.stop()
    c.disconnect()
    c.loop_stop()
    return got


def overlapping(port):
    """One SUBSCRIBE with ov/# (QoS 0), ov/+ (QoS 2), ov/a (QoS 1): one delivery each, at
    the highest granted QoS the message allows. Sorted: messages at different QoS levels
    have no order between them."""
    sub = PahoSub(port, "ov-sub", [("ov/#", 0), ("ov/+", 2), ("ov/a", 1)])
    c = paho_client(port, "ov-pub")
    publish_all(c, [("ov/a", "a2", 2, False), ("ov/a", "a1", 1, False),
                    ("ov/b", "b2", 2, False), ("ov/b", "b0", 0, False),
                    ("ov/a/deep", "deep2", 2, False)])
    got = sorted(sub.collect(5))
    c.disconnect()
    c.loop_stop()
    sub.stop()
    return {"overlapping": got}


def retained_clear(port):
    """A retained message, then an empty retained one on the same topic: live subscribers
    see both; a later subscriber gets only the other topic's retained message."""
    live = PahoSub(port, "rc-live", [("rc/#", 1)])
    c = paho_client(port, "rc-pub")
    publish_all(c, [("rc/x", "v1", 1, True), ("rc/y", "kept", 1, True),
                    ("rc/x", "", 1, True)])
    got = {"live": live.collect(3)}
    late = PahoSub(port, "rc-late", [("rc/#", 1)])
    got["late"] = late.collect(1)
    for s in (live, late):
        s.stop()
    c.disconnect()
    c.loop_stop()
    return got


def dollar_topics(port):
    """'#' and '+/t' do not match topics starting with '$' [MQTT-4.7.2-1]; '$app/#' does."""
    subs = {f: PahoSub(port, "dollar-%d" % i, [(f, 1)])
            for i, f in enumerate(["#", "+/t", "$app/#"])}
    c = paho_client(port, "dollar-pub")
    publish_all(c, [("$app/t", "dollar", 1, False), ("app/t", "plain", 1, False)])
    # Past the first message, longer than sys_interval: a $SYS message would show.
    got = {"sub " + f: s.collect(1, extra=1.2) for f, s in subs.items()}
    for s in subs.values():
        s.stop()
    c.disconnect()
    c.loop_stop()
    return got


def will_on_abrupt_close(port):
    """A client that resets its connection has its will published (and retained); one that
    sends DISCONNECT does not."""
    watcher = PahoSub(port, "will-watch", [("will/#", 1)])
    dies = raw_connect(port, "will-dies", ("will/dies", "gone", 1, True))
    polite = raw_connect(port, "will-polite", ("will/polite", "never", 1, False))
    polite.sendall(b"\xe0\x00")
    polite.close()
    # SO_LINGER 0: close() sends RST, no DISCONNECT.
    dies.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    dies.close()
    got = {"watcher": watcher.collect(1)}
    late = PahoSub(port, "will-late", [("will/#", 1)])
    got["late"] = late.collect(1)
    for s in (watcher, late):
        s.stop()
    return got


SCENARIOS = [
    ("mosquitto_pub -l, 5,000 at QoS 0", "", lines_qos0),
    ("5,000 QoS 0 from a publish loop", "", publish_loop),
    ("5,000 retained, subscribe ret/#", "", retained_5000),
    ("20,000 retained, subscribe #", "", retained_hash),
    ("20,000 retained, subscribe #, max_queued_messages 0", "max_queued_messages 0",
     retained_hash),
    ("retained with QoS downgrade", "", retained_downgrade),
    ("overlapping subscriptions", "", overlapping),
    ("clearing a retained message", "", retained_clear),
    # $SYS published every second while '#' listens: it must not match them either.
    ("$ topics against # and +", "sys_interval 1", dollar_topics),
    ("will on an abrupt close", "", will_on_abrupt_close),
]


# Where pipit follows the standard and Mosquitto 2.0.11 does not: for (scenario, subscriber),
# what pipit delivers instead, and why.
KNOWN = {
    ("overlapping subscriptions", "overlapping"): (
        sorted([record("ov/a", "a2", 2, False), record("ov/a", "a1", 1, False),
                record("ov/b", "b2", 2, False), record("ov/b", "b0", 0, False),
                record("ov/a/deep", "deep2", 0, False)]),
        "[MQTT-3.3.5-1]: one copy at the maximum QoS of all matching subscriptions; "
        "Mosquitto 2.0.11 sends ov/a 'a2' at QoS 1, its exact subscription's QoS",
    ),
}


def run(name, argv, conf, scenario):
    """`scenario(port)` on a fresh broker; the broker's log is printed if it fails."""
    broker = Broker(name, argv, conf)
    try:
        return scenario(broker.port)
    except (Exception, SystemExit):
        print("--- %s log\n%s" % (name, broker.tail()))
        raise
    finally:
        broker.stop()


def compare(title, reference, pipit):
    """Prints per subscriber the counts, and a diff where pipit differs from Mosquitto (or,
    where KNOWN says so, from the standard); True if nothing differs."""
    same = True
    for sub in sorted(set(reference) | set(pipit)):
        want, got = reference.get(sub, []), pipit.get(sub, [])
        counts = "Mosquitto %d, pipit %d" % (len(want), len(got))
        known, reference_name = KNOWN.get((title, sub)), "mosquitto"
        if known and want != got:
            want, reference_name = known[0], "standard"
            counts += "; a known difference, pipit checked against the standard: " + known[1]
        print("  %s %s: %s" % ("ok" if want == got else "!!", sub, counts))
        if want != got:
            same = False
            diff = list(difflib.unified_diff(want, got, reference_name, "pipit", lineterm="", n=1))
            for line in diff[:40]:
                print("      " + line)
            if len(diff) > 40:
                print("      ... %d more diff lines" % (len(diff) - 40))
    return same


def pipit_binary():
    explicit = os.environ.get("PIPIT_BIN")
    if explicit:
        return os.path.abspath(explicit)
    subprocess.check_call(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    return os.path.join(ROOT, "target/release/pipit")


def side_by_side(label, scenarios, run_on):
    """Runs every (title, *args) of `scenarios` with `run_on(name, argv, *args)` on Mosquitto,
    then on pipit, compares what each returned, and exits 1 if any differ."""
    pipit = pipit_binary()
    started = time.monotonic()
    differ = []
    for title, *args in scenarios:
        reference = run_on("mosquitto", [MOSQUITTO], *args)
        ours = run_on("pipit", [pipit], *args)
        print("%s:" % title)
        if not compare(title, reference, ours):
            differ.append(title)
    print("%s: %d scenarios in %.0f s; %d differ%s"
          % (label, len(scenarios), time.monotonic() - started, len(differ),
             "".join("\n  " + t for t in differ)))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    side_by_side("differential", SCENARIOS, run)
