// The page's WebSocket on its own host: each message parsed and handed on; after a close it is opened again with
// capped exponential backoff and jitter, unless the server said there is no such instrument (4404).
const NO_SUCH_INSTRUMENT = 4404;

/** Open `path` and keep it open; `onOpen`, `onMessage(msg)` and `onClose` see every connection in turn. */
export function keepSocket(path, { onOpen, onMessage, onClose }) {
  let attempt = 0;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${path}`);
    ws.onopen = () => { attempt = 0; onOpen(); };
    ws.onmessage = (event) => onMessage(JSON.parse(event.data));
    ws.onclose = (event) => {
      onClose();
      if (event.code === NO_SUCH_INSTRUMENT) return;  // retrying will not help
      attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  };
  connect();
}
