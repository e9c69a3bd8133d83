#!/usr/bin/env python3
"""Drives a freshly built pipit with Eclipse Paho (paho-mqtt 2.x) in MQTT 5 mode.

Checks: CONNECT/CONNACK properties, subscription identifiers, No Local, user properties,
response topic and correlation data, QoS 0/1/2, retained messages, and a will with a Will
Delay Interval. Exits non-zero on the first failure; stops the broker it started by PID.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

try:
    import paho.mqtt  # noqa: F401
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "paho-mqtt>=2,<3"])

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Client:
    """A paho v5 client on its own network thread that records what it receives."""

    def __init__(self, port, client_id, connect_props=None):
        self.messages = []
        self.cond = threading.Condition()
        self.connack = None
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = lambda *a: self._notify()
        self.subacks = 0
        self.c.connect(HOST, port, 30, clean_start=True, properties=connect_props)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK for " + client_id)

    def _notify(self):
        with self.cond:
            self.subacks += 1
            self.cond.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        with self.cond:
            self.connack = (reason_code, properties)
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def wait(self, pred, what, timeout=10):
        with self.cond:
            if not self.cond.wait_for(pred, timeout):
                fail("timed out waiting for " + what)

    def subscribe(self, topic, options, sub_id=None):
        props = None
        if sub_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sub_id
        before = self.subacks
        self.c.subscribe(topic, options=options, properties=props)
        self.wait(lambda: self.subacks > before, "SUBACK for " + topic)

    def publish(self, topic, payload, qos=0, retain=False, props=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        info.wait_for_publish(10)
        if not info.is_published():
            fail("publish to %s not completed" % topic)

    def wait_messages(self, n, what):
        self.wait(lambda: len(self.messages) >= n, "%d messages: %s" % (n, what))

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


def fail(why):
    print("FAIL:", why)
    sys.exit(1)


def check(cond, why):
    if not cond:
        fail(why)


def main():
    subprocess.check_call(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    port = free_port()
    log = tempfile.TemporaryFile()
    broker = subprocess.Popen(
        [os.path.join(ROOT, "target/release/pipit"), "--port", str(port)],
        stderr=log,
        env=dict(os.environ, RUST_LOG="info"),
    )
    try:
        for _ in range(50):
            try:
                socket.create_connection((HOST, port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        run(port)
    except SystemExit:
        log.seek(0)
        print("--- broker log")
        print(log.read().decode(errors="replace")[-3000:])
        raise
    finally:
        broker.terminate()
        try:
            broker.wait(5)
        except subprocess.TimeoutExpired:
            broker.kill()
    print("paho v5 interop passed")


def run(port):
    # CONNECT with properties; CONNACK advertises what the broker supports.
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 30
    props.ReceiveMaximum = 10
    props.TopicAliasMaximum = 5
    props.UserProperty = ("who", "paho")
    sub = Client(port, "paho-sub", props)
    code, ack = sub.connack
    check(not code.is_failure, "CONNACK %s" % code)
    check(getattr(ack, "SubscriptionIdentifierAvailable", 1) == 1, "subscription ids")
    check(getattr(ack, "SharedSubscriptionAvailable", 1) == 1, "shared subscriptions")
    check(hasattr(ack, "ReceiveMaximum"), "receive maximum advertised")
    check(hasattr(ack, "MaximumPacketSize"), "maximum packet size advertised")

    pub = Client(port, "paho-pub")

    # Retained message first, so the subscription below gets it.
    pub.publish("paho/retained", b"kept", qos=1, retain=True)

    sub.subscribe("paho/q/#", SubscribeOptions(qos=2), sub_id=11)
    sub.subscribe("paho/retained", SubscribeOptions(qos=1), sub_id=12)
    sub.wait_messages(1, "retained")
    r = sub.messages.pop(0)
    check(r.retain and r.payload == b"kept", "retained message %r" % r.payload)
    check(r.properties.SubscriptionIdentifier == [12], "retained sub id")

    # QoS 0/1/2 with user properties, response topic and correlation data.
    for qos in (0, 1, 2):
        p = Properties(PacketTypes.PUBLISH)
        p.UserProperty = [("qos", str(qos)), ("k", "v")]
        p.ResponseTopic = "paho/reply"
        p.CorrelationData = b"corr-%d" % qos
        p.ContentType = "text/plain"
        pub.publish("paho/q/%d" % qos, b"m%d" % qos, qos=qos, props=p)
    sub.wait_messages(3, "QoS 0/1/2")
    got = sorted(sub.messages, key=lambda m: m.qos)
    sub.messages.clear()
    for qos, m in enumerate(got):
        check(m.qos == qos and m.payload == b"m%d" % qos, "QoS %d message %r" % (qos, m.payload))
        mp = m.properties
        check(mp.UserProperty == [("qos", str(qos)), ("k", "v")], "user properties %r" % mp.UserProperty)
        check(mp.ResponseTopic == "paho/reply", "response topic")
        check(mp.CorrelationData == b"corr-%d" % qos, "correlation data")
        check(mp.ContentType == "text/plain", "content type")
        check(mp.SubscriptionIdentifier == [11], "subscription id %r" % mp.SubscriptionIdentifier)

    # No Local: the publisher's own subscription does not get its message back.
    pub.subscribe("paho/nl", SubscribeOptions(qos=1, noLocal=True))
    sub.subscribe("paho/nl", SubscribeOptions(qos=1))
    pub.publish("paho/nl", b"nl", qos=1)
    sub.wait_messages(1, "no-local message at the other client")
    time.sleep(0.5)
    check(not pub.messages, "no-local message came back to its publisher")
    sub.messages.clear()

    # A will with a 1 s delay, from a client that dies without DISCONNECT.
    sub.subscribe("paho/will", SubscribeOptions(qos=1))
    code = (
        "import os, paho.mqtt.client as m\n"
        "from paho.mqtt.properties import Properties\n"
        "from paho.mqtt.packettypes import PacketTypes\n"
        "c = m.Client(m.CallbackAPIVersion.VERSION2, client_id='paho-dies', protocol=m.MQTTv5)\n"
        "w = Properties(PacketTypes.WILLMESSAGE); w.WillDelayInterval = 1\n"
        "c.will_set('paho/will', b'gone', qos=1, properties=w)\n"
        "p = Properties(PacketTypes.CONNECT); p.SessionExpiryInterval = 30\n"
        "c.connect('%s', %d, 30, properties=p)\n"
        "c.loop(2)\n"
        "os._exit(0)\n" % (HOST, port)
    )
    subprocess.check_call([sys.executable, "-c", code])
    died = time.monotonic()
    sub.wait_messages(1, "delayed will")
    elapsed = time.monotonic() - died
    check(sub.messages[0].payload == b"gone", "will payload")
    check(elapsed >= 0.8, "will arrived after %.2f s, before its delay" % elapsed)

    sub.stop()
    pub.stop()


if __name__ == "__main__":
    main()
