// Subscribe to moodloop events from Node.js (zeromq v6 API).
//   npm install && node subscriber.js [tcp://127.0.0.1:5556]
// Every message is two frames: the ASCII topic and a UTF-8 JSON object with "v": 1.
const zmq = require("zeromq");

async function main(endpoint = "tcp://127.0.0.1:5556") {
  const sock = new zmq.Subscriber();
  sock.connect(endpoint);
  sock.subscribe("moodloop.");  // prefix match: emotion, state and status
  console.error(`listening on ${endpoint}`);

  for await (const [topic, body] of sock) {
    let msg;
    try {
      msg = JSON.parse(body.toString("utf8"));
    } catch (err) {
      continue;  // malformed: drop it, as the Python subscriber does
    }
    if (msg === null || typeof msg !== "object" || msg.v !== 1) continue;  // not a message, or another version
    switch (topic.toString("ascii")) {
      case "moodloop.state":
        console.log(`state ${msg.previous} -> ${msg.state} (confidence ${msg.confidence})`);
        break;
      case "moodloop.status":
        console.log(`status ${msg.state}, ${msg.fps} fps, camera ${msg.camera}`);
        break;
      case "moodloop.emotion":
        console.log(`emotion ${msg.label} ${msg.confidence.toFixed(2)} valence ${msg.valence.toFixed(2)}`);
        break;
    }
  }
}

main(process.argv[2]);
