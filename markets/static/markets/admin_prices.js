// The admin's instrument list: each "last price (live)" cell follows /ws/prices/ (staff only), reconnecting by itself.
document.addEventListener("DOMContentLoaded", () => {
  "use strict";
  const cells = () => document.querySelectorAll(".live-price[data-instrument]");
  if (!cells().length) return;
  let attempt = 0;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/prices/`);
    ws.onopen = () => { attempt = 0; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type !== "prices") return;
      for (const p of msg.prices) {
        for (const cell of document.querySelectorAll(`.live-price[data-instrument="${p.exchange}:${p.symbol}"]`)) {
          const before = Number(cell.textContent);
          cell.textContent = p.price;
          cell.style.color = Number(p.price) > before ? "#16a34a" : Number(p.price) < before ? "#dc2626" : "";
          cell.title = `last trade ${new Date(p.time).toISOString()}`;
        }
      }
    };
    ws.onclose = (event) => {
      if (event.code === 4403) return;  // not staff: nothing to follow
      attempt += 1;
      setTimeout(connect, Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2));
    };
  }
  connect();
});
