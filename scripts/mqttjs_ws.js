// MQTT.js over WebSockets against pipit: ws://127.0.0.1:WS_PORT and wss://127.0.0.1:WSS_PORT
// (server certificate checked against CA_FILE), MQTT 3.1.1 and 5.0. Each client subscribes,
// publishes a 100 KB QoS 1 message to itself and a small one to a TCP client's topic, and
// must get its own message back intact; the TCP side (mqtt://127.0.0.1:TCP_PORT) must get
// every small one. Run by scripts/mqttjs.sh.
"use strict";
const fs = require("fs");
const mqtt = require("mqtt");

const [wsPort, wssPort, caFile, tcpPort] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const big = Buffer.alloc(100 * 1024, 0).map((_, i) => i % 251);

function connect(url, protocolVersion, clientId) {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { protocolVersion, clientId, ca, reconnectPeriod: 0 });
    const timer = setTimeout(() => reject(new Error(`${url}: no CONNACK`)), 10000);
    client.once("connect", () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.once("error", (e) => reject(new Error(`${url}: ${e.message}`)));
  });
}

async function roundTrip(url, protocolVersion) {
  const name = `${url.split(":")[0]} MQTT ${protocolVersion === 4 ? "3.1.1" : "5.0"}`;
  const client = await connect(url, protocolVersion, `js-${url.split(":")[0]}-${protocolVersion}`);
  const topic = `js/${name.replace(/ /g, "-")}`;
  await client.subscribeAsync(topic, { qos: 1 });
  const got = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: message not received`)), 10000);
    client.on("message", (t, payload) => {
      clearTimeout(timer);
      if (t !== topic || !payload.equals(big)) return reject(new Error(`${name}: wrong message`));
      resolve();
    });
  });
  await client.publishAsync(topic, big, { qos: 1 });
  await got;
  await client.publishAsync("js/to-tcp", name, { qos: 1 });
  await client.endAsync();
  return name;
}

(async () => {
  const tcp = await connect(`mqtt://127.0.0.1:${tcpPort}`, 4, "js-tcp");
  const heard = [];
  tcp.on("message", (_, payload) => heard.push(payload.toString()));
  await tcp.subscribeAsync("js/to-tcp", { qos: 1 });
  const names = [];
  for (const url of [`ws://127.0.0.1:${wsPort}/mqtt`, `wss://127.0.0.1:${wssPort}/`]) {
    for (const version of [4, 5]) {
      const name = await roundTrip(url, version);
      names.push(name);
      console.log(`ok: MQTT.js ${name}: 100 KB QoS 1 message to itself`);
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  await tcp.endAsync();
  if (heard.sort().join() !== names.sort().join()) {
    throw new Error(`TCP client heard ${JSON.stringify(heard)}, expected ${JSON.stringify(names)}`);
  }
  console.log(`ok: a TCP client got all ${heard.length} messages sent over WebSockets`);
})().catch((e) => {
  console.error(`FAIL: ${e.message}`);
  process.exit(1);
});
