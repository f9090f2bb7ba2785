// The WebSocket push (/api/v1/ws): the token goes as the first message, never
// in the URL; the socket reconnects with backoff and resumes from the last
// event it saw.

import { currentUser } from "./api.js";

const PING_EVERY_MS = 25000; // under the server's idle timeout (60 s)

export class Push {
  constructor(topics, onMessage, onState = () => {}) {
    this.topics = topics;
    this.onMessage = onMessage;
    this.onState = onState;
    this.lastEventId = null;
    this.delay = 500;
    this.closed = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.closed) return;
      const user = currentUser();
      if (user) socket.send(JSON.stringify({ type: "auth", token: user.token }));
      for (const topic of this.topics) {
        const message = { type: "subscribe", topic };
        if (this.lastEventId) message.last_event_id = this.lastEventId;
        socket.send(JSON.stringify(message));
      }
      this.pinger = setInterval(() => socket.send(JSON.stringify({ type: "ping" })), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "subscribed") {
        this.delay = 500;
        this.onState("live");
      }
      if (message.event_id) this.lastEventId = message.event_id;
      this.onMessage(message);
    });
    socket.addEventListener("close", () => {
      clearInterval(this.pinger);
      if (this.closed) return;
      this.onState("reconnecting");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }

  close() {
    this.closed = true;
    clearInterval(this.pinger);
    const socket = this.socket;
    // Closing a socket that is still connecting logs a browser error: wait for it.
    if (socket?.readyState === WebSocket.CONNECTING) {
      socket.addEventListener("open", () => socket.close(1000));
    } else socket?.close(1000);
  }
}
