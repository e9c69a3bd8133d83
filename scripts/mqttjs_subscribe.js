// MQTT.js subscribe() of 1,500 topics in one call (one SUBSCRIBE packet), against the broker
// at mqtt://127.0.0.1:PORT, in MQTT 3.1.1 and 5.0: every topic must be granted, the client must
// not reconnect, and a message to the last topic must arrive. Run by scripts/mqttjs.sh.
"use strict";
const mqtt = require("mqtt");

const port = Number(process.argv[2]);
const TOPICS = 1500;

function check(protocolVersion) {
  return new Promise((resolve, reject) => {
    const topics = Array.from({ length: TOPICS }, (_, i) => `mqttjs/v${protocolVersion}/${i}`);
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, {
      protocolVersion,
      clientId: `mqttjs-${protocolVersion}`,
      reconnectPeriod: 200,
    });
    let reconnects = 0;
    const timer = setTimeout(() => fail("timed out"), 10000);
    const fail = (why) => {
      clearTimeout(timer);
      client.end(true);
      reject(new Error(`MQTT ${protocolVersion}: ${why}`));
    };
    client.on("reconnect", () => (reconnects += 1));
    client.on("error", (e) => fail(`error ${e.message}`));
    client.once("connect", () => {
      client.subscribe(topics, { qos: 1 }, (err, granted) => {
        if (err) return fail(`subscribe failed: ${err.message}`);
        const ok = granted.filter((g) => g.qos === 1).length;
        if (granted.length !== TOPICS || ok !== TOPICS) {
          return fail(`granted ${ok} of ${TOPICS} (${granted.length} codes)`);
        }
        const last = topics[TOPICS - 1];
        client.on("message", (topic, payload) => {
          if (topic !== last || payload.toString() !== "hello") return fail(`got ${topic}`);
          // Stay connected a moment: a broker that closes would show up as a reconnect.
          setTimeout(() => {
            clearTimeout(timer);
            client.end(false, () =>
              reconnects === 0 ? resolve(ok) : reject(new Error(`${reconnects} reconnects`)),
            );
          }, 500);
        });
        client.publish(last, "hello", { qos: 1 });
      });
    });
  });
}

(async () => {
  for (const version of [4, 5]) {
    const granted = await check(version);
    console.log(`ok: MQTT.js (MQTT ${version === 4 ? "3.1.1" : "5.0"}) subscribed ${granted} topics in one SUBSCRIBE, no reconnect`);
  }
})().catch((e) => {
  console.error(`FAIL: ${e.message}`);
  process.exit(1);
});
