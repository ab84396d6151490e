// The server's event stream: a snapshot, then messages numbered without gaps (a frame holds
// one, or an array of consecutive ones when the page was behind). A message
// whose seq is not the next one means something was lost: the page counts it and reconnects
// for a fresh snapshot. A "resync" snapshot (the server's answer to a client that fell too
// far behind) replaces the state like the first one.

export class Feed {
  constructor(url, { onSnapshot, onMessage, onStatus }) {
    this.url = url;
    this.onSnapshot = onSnapshot;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.seq = null;
    this.gaps = 0;
    this.resyncs = 0;
    this.retry = 500;
    this.connect();
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.seq = null;
    ws.onopen = () => { this.retry = 500; this.status("open"); };
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);       // one message, or consecutive ones in an array
      for (const m of Array.isArray(data) ? data : [data]) this.receive(m);
    };
    ws.onclose = () => {
      this.status("closed");
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  receive(msg) {
    if (msg.type === "snapshot" || msg.type === "resync") {
      if (msg.type === "resync") this.resyncs += 1;
      this.seq = msg.seq;
      this.onSnapshot(msg.state);
    } else if (this.seq !== null && msg.seq !== this.seq + 1) {
      this.gaps += 1;                 // never expected: start over from a snapshot
      this.ws.close();
      return;
    } else {
      this.seq = msg.seq;
      this.onMessage(msg);
    }
    this.status("open");
  }

  status(state) {
    this.onStatus({ state, seq: this.seq, gaps: this.gaps, resyncs: this.resyncs });
  }
}
