// The push websocket (docs/api.md, "Push"): reconnects with backoff; `onOpen` lets the app send its resume.

const CLOSE_UNAUTHORIZED = 4401;
const BACKOFF_MS = [300, 600, 1200, 2500, 5000, 10000];

export class PushSocket {
  constructor({ token, onMessage, onOpen, onUnauthorized, onStatus = () => {} }) {
    this.token = token;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.onUnauthorized = onUnauthorized;
    this.onStatus = onStatus;
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.stopped = false;
    this.opens = 0;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(this.token())}`);
    this.ws = ws;
    this.onStatus("connecting");
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.opens += 1;
      this.onStatus("live");
      this.onOpen(this.opens > 1);
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === CLOSE_UNAUTHORIZED) {
        this.stopped = true;
        this.onStatus("closed");
        this.onUnauthorized();
        return;
      }
      this.#retry();
    });
    // An error is always followed by a close event, which schedules the retry.
    ws.addEventListener("error", () => {});
  }

  send(message) {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Drop the connection as a network failure would (the client reconnects and resumes). */
  drop() {
    this.ws?.close();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
  }

  #retry() {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.onStatus("reconnecting");
    this.timer = setTimeout(() => this.connect(), base + Math.random() * base * 0.3);
  }
}
