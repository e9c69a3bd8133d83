#!/usr/bin/env python3
"""MQTT 5 with gmqtt (PyPI, an asyncio client), against Mosquitto and pipit side by side.

Each scenario gets a fresh Mosquitto (Debian's) and a fresh pipit, started as
`differential.py` starts them; gmqtt clients do the same things to each, and what every
subscriber received (topic, payload, QoS, RETAIN, the message's MQTT 5 properties, and the
CONNACK flags and facts the scenario looks at) must be the same. Scenarios: properties at QoS
0/1/2, topic aliases from the client, retained messages with Retain Handling and Retain As
Published, No Local, a session resumed with its queued messages, a delayed will, a shared
subscription, unsubscribe, MQTT 3.1.1 mode, a 256 KiB payload, a retained message's expiry,
and overlapping subscriptions with identifiers.

Installs gmqtt (pip) and, through differential.py, paho-mqtt, mosquitto and
mosquitto-clients if missing. Builds the release binary unless PIPIT_BIN names one. Stops
only the brokers it started, by PID; exits 1 if any scenario differs.
"""

import asyncio
import os
import subprocess
import sys
import time

try:
    import gmqtt  # noqa: F401
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "gmqtt>=0.6,<1"])

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import differential as d  # noqa: E402  (run, side_by_side; installs Mosquitto)
from gmqtt import Client, Message  # noqa: E402
from gmqtt.mqtt.constants import MQTTv311, MQTTv50  # noqa: E402

HOST = d.HOST
# Properties of a received PUBLISH that the comparison includes (the others are gmqtt's own
# flags or, like the expiry interval, counted down by the broker).
COMPARED = ("payload_format_id", "content_type", "response_topic", "correlation_data",
            "user_property", "subscription_identifier")


def describe(topic, payload, qos, properties):
    """One received message as a line of the comparison."""
    shown = {k: properties[k] for k in COMPARED if k in properties}
    if "message_expiry_interval" in properties:
        shown["expiry"] = "counted down" if properties["message_expiry_interval"][0] <= 60 \
            else properties["message_expiry_interval"]
    body = payload if len(payload) <= 64 else b"%d bytes, sum %d" % (len(payload), sum(payload))
    return "%s %r q%d r%d %s" % (topic, body, qos, properties.get("retain", 0), sorted(shown.items()))


class Peer:
    """A gmqtt client that records what it receives, as `describe` lines."""

    def __init__(self, name, version=MQTTv50, clean=True, **connect_properties):
        self.name = name
        self.version = version
        self.got = []
        self.arrived = asyncio.Condition()
        self.subacks = {}
        self.connack = None
        self.c = Client(name, clean_session=clean, **connect_properties)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, client, flags, rc, properties):
        self.connack = (flags, rc, properties)

    def _on_message(self, client, topic, payload, qos, properties):
        self.got.append(describe(topic, payload, qos, properties))
        asyncio.ensure_future(self._notify())
        return 0

    def _on_subscribe(self, client, mid, qos, properties):
        future = self.subacks.pop(mid, None)
        if future and not future.done():
            future.set_result(qos)

    async def _notify(self):
        async with self.arrived:
            self.arrived.notify_all()

    async def connect(self, port):
        await self.c.connect(HOST, port, keepalive=30, version=self.version)
        return self

    async def subscribe(self, topic, qos=1, **options):
        mid = self.c.subscribe(topic, qos=qos, **options)
        self.subacks[mid] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(self.subacks[mid], 10)

    async def collect(self, expected, extra=0.4, timeout=10):
        """Waits for `expected` messages, then `extra` seconds for any beyond them."""
        async with self.arrived:
            try:
                await asyncio.wait_for(
                    self.arrived.wait_for(lambda: len(self.got) >= expected), timeout)
            except asyncio.TimeoutError:
                pass
        await asyncio.sleep(extra)
        return list(self.got)

    async def disconnect(self, **properties):
        await self.c.disconnect(**properties)


async def peers(port, *specs):
    """Connected `Peer`s, one per (name, options) spec."""
    return [await Peer(name, **options).connect(port) for name, options in specs]


async def properties_at_each_qos(port):
    sub, pub = await peers(port, ("gm-sub", {}), ("gm-pub", {}))
    await sub.subscribe("gm/q/#", qos=2, subscription_identifier=11)
    for qos in (0, 1, 2):
        pub.c.publish("gm/q/%d" % qos, b"m%d" % qos, qos=qos, content_type="text/plain",
                      response_topic="gm/reply", correlation_data=b"corr-%d" % qos,
                      payload_format_id=1, message_expiry_interval=60,
                      user_property=[("qos", str(qos)), ("k", "v")])
    got = {"sub": sorted(await sub.collect(3))}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def client_topic_alias(port):
    sub, pub = await peers(port, ("gm-sub", {}), ("gm-pub", {}))
    await sub.subscribe("gm/alias/#", qos=1)
    advertised = pub.connack[2].get("topic_alias_maximum", [0])[0]
    pub.c.publish("gm/alias/t", b"named", qos=1, topic_alias=1)
    pub.c.publish("", b"by alias", qos=1, topic_alias=1)
    got = {"sub": await sub.collect(2), "publisher": ["aliases allowed: %s" % (advertised > 0)]}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def retained_handling(port):
    (pub,) = await peers(port, ("gm-pub", {}))
    pub.c.publish("gm/r", b"kept", qos=1, retain=True)
    await asyncio.sleep(0.3)
    plain, never, published = await peers(port, ("gm-plain", {}), ("gm-never", {}),
                                          ("gm-published", {}))
    await plain.subscribe("gm/r", qos=1)
    await never.subscribe("gm/r", qos=1, retain_handling_options=2)
    await published.subscribe("gm/r", qos=1, retain_as_published=True)
    await plain.collect(1)
    pub.c.publish("gm/r", b"live", qos=1, retain=True)
    got = {"plain": await plain.collect(2), "never": await never.collect(1),
           "published": await published.collect(2)}
    pub.c.publish("gm/r", b"", qos=1, retain=True)
    await asyncio.sleep(0.3)
    (late,) = await peers(port, ("gm-late", {}))
    await late.subscribe("gm/r", qos=1)
    got["after clearing"] = await late.collect(0, extra=0.6)
    for p in (pub, plain, never, published, late):
        await p.disconnect()
    return got


async def no_local(port):
    me, other = await peers(port, ("gm-me", {}), ("gm-other", {}))
    await me.subscribe("gm/nl", qos=1, no_local=True)
    await other.subscribe("gm/nl", qos=1)
    me.c.publish("gm/nl", b"mine", qos=1)
    got = {"other": await other.collect(1), "publisher": await me.collect(0, extra=0.6)}
    await asyncio.gather(me.disconnect(), other.disconnect())
    return got


async def session_resumed(port):
    options = {"clean": False, "session_expiry_interval": 60}
    (first,) = await peers(port, ("gm-session", options))
    await first.subscribe("gm/s", qos=1)
    await first.disconnect()
    (pub,) = await peers(port, ("gm-pub", {}))
    for i in range(3):
        pub.c.publish("gm/s", b"queued %d" % i, qos=1)
    await asyncio.sleep(0.5)
    (again,) = await peers(port, ("gm-session", options))
    got = {"resumed": ["session present: %d" % again.connack[0]] + await again.collect(3)}
    await again.disconnect(session_expiry_interval=0)
    await pub.disconnect()
    return got


DIES = """
import asyncio, os, sys
from gmqtt import Client, Message
async def main():
    c = Client("gm-dies", will_message=Message("gm/will", b"gone", qos=1, will_delay_interval=1),
               session_expiry_interval=30)
    await c.connect("%s", int(sys.argv[1]), keepalive=30)
    await asyncio.sleep(0.3)
    os._exit(0)
asyncio.run(main())
"""


async def delayed_will(port):
    (watcher,) = await peers(port, ("gm-watcher", {}))
    await watcher.subscribe("gm/will", qos=1)
    await asyncio.to_thread(subprocess.check_call, [sys.executable, "-c", DIES % HOST, str(port)])
    died = time.monotonic()
    got = await watcher.collect(1, extra=0)
    waited = time.monotonic() - died
    got.append("after its delay: %s" % (waited >= 0.8))
    await watcher.disconnect()
    return {"watcher": got}


async def shared_subscription(port):
    a, b, pub = await peers(port, ("gm-a", {}), ("gm-b", {}), ("gm-pub", {}))
    await a.subscribe("$share/g/gm/sh", qos=1)
    await b.subscribe("$share/g/gm/sh", qos=1)
    # Ten: gmqtt refuses to publish past the broker's Receive Maximum unacknowledged, and
    # Mosquitto's is 20.
    for i in range(10):
        pub.c.publish("gm/sh", b"%02d" % i, qos=1)
    await asyncio.sleep(0.5)
    both = await a.collect(0, extra=0.3) + await b.collect(0, extra=0)
    got = {"group": sorted(both),
           "members": ["both got some: %s" % (bool(a.got) and bool(b.got))]}
    for p in (a, b, pub):
        await p.disconnect()
    return got


async def unsubscribe(port):
    sub, pub = await peers(port, ("gm-sub", {}), ("gm-pub", {}))
    await sub.subscribe("gm/u", qos=1)
    pub.c.publish("gm/u", b"before", qos=1)
    await sub.collect(1)
    sub.c.unsubscribe("gm/u")
    await asyncio.sleep(0.3)
    pub.c.publish("gm/u", b"after", qos=1)
    got = {"sub": await sub.collect(2, extra=0, timeout=1)}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def mqtt_311(port):
    old = {"version": MQTTv311}
    sub, pub = await peers(port, ("gm-sub", old), ("gm-pub", old))
    pub.c.publish("gm/v3/r", b"kept", qos=1, retain=True)
    await asyncio.sleep(0.3)
    await sub.subscribe("gm/v3/#", qos=2)
    for qos in (0, 1, 2):
        pub.c.publish("gm/v3/%d" % qos, b"m%d" % qos, qos=qos)
    got = {"sub": sorted(await sub.collect(4))}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def large_payload(port):
    sub, pub = await peers(port, ("gm-sub", {}), ("gm-pub", {}))
    await sub.subscribe("gm/big", qos=1)
    payload = bytes(i % 251 for i in range(256 * 1024))
    pub.c.publish("gm/big", payload, qos=1)
    got = {"sub": await sub.collect(1)}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def retained_expiry(port):
    (pub,) = await peers(port, ("gm-pub", {}))
    pub.c.publish("gm/exp/short", b"1 s", qos=1, retain=True, message_expiry_interval=1)
    pub.c.publish("gm/exp/long", b"60 s", qos=1, retain=True, message_expiry_interval=60)
    await asyncio.sleep(2.5)
    (sub,) = await peers(port, ("gm-sub", {}))
    await sub.subscribe("gm/exp/#", qos=1)
    got = {"sub": await sub.collect(1)}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


async def overlapping_identifiers(port):
    sub, pub = await peers(port, ("gm-sub", {}), ("gm-pub", {}))
    await sub.subscribe("gm/o/#", qos=1, subscription_identifier=1)
    await sub.subscribe("gm/o/+", qos=0, subscription_identifier=2)
    pub.c.publish("gm/o/x", b"both", qos=1)
    pub.c.publish("gm/o/x/y", b"one", qos=1)
    got = {"sub": sorted(await sub.collect(2))}
    await asyncio.gather(sub.disconnect(), pub.disconnect())
    return got


OVERLAPPING = "gmqtt: overlapping subscriptions with identifiers"

SCENARIOS = [
    ("gmqtt: properties at QoS 0, 1 and 2", properties_at_each_qos),
    ("gmqtt: topic alias from the client", client_topic_alias),
    ("gmqtt: retained, Retain Handling, Retain As Published", retained_handling),
    ("gmqtt: No Local", no_local),
    ("gmqtt: session resumed with queued messages", session_resumed),
    ("gmqtt: will with a 1 s delay", delayed_will),
    ("gmqtt: shared subscription", shared_subscription),
    ("gmqtt: unsubscribe", unsubscribe),
    ("gmqtt: MQTT 3.1.1", mqtt_311),
    ("gmqtt: 256 KiB payload", large_payload),
    ("gmqtt: retained message expiry", retained_expiry),
    (OVERLAPPING, overlapping_identifiers),
]

# Where pipit and Mosquitto 2.0.11 both follow the standard but differ: what pipit delivers,
# and why (`differential.compare` then checks pipit against this instead).
d.KNOWN[(OVERLAPPING, "sub")] = (
    ["gm/o/x b'both' q1 r0 [('subscription_identifier', [1, 2])]",
     "gm/o/x/y b'one' q1 r0 [('subscription_identifier', [1])]"],
    "one copy at the highest QoS of the matching subscriptions, carrying both identifiers "
    "[MQTT-3.3.4-2, MQTT-3.3.4-4]; Mosquitto sends a copy per subscription, which the "
    "standard also allows",
)


def run(name, argv, scenario):
    """The coroutine `scenario(port)` on a fresh broker (`differential.run`), within 60 s."""
    return d.run(name, argv, "", lambda port: asyncio.run(asyncio.wait_for(scenario(port), 60)))


if __name__ == "__main__":
    d.side_by_side("gmqtt", SCENARIOS, run)
