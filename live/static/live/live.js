// The live market page, wired: one WebSocket (/ws/market/<exchange>/<symbol>/) feeds the chart, the last price, the
// trade tape, the feed badge, the gap list, the signals and the trading panels (positions and orders of every
// symbol); the consolidated price of the base asset is polled from the API. A reconnect starts again from the
// server's snapshot, so the page never shows a stale mix.
import { banner } from "./banner.js";
import { loadHistory, redrawCandles, updateCandles } from "./chart.js";
import { cfg } from "./config.js";
import { pollConsolidated } from "./consolidated.js";
import { listenToControls } from "./controls.js";
import { renderBadge, setFeed } from "./feed.js";
import { market } from "./market.js";
import { onGap, onSignals } from "./panels.js";
import { keepSocket } from "./socket.js";
import { addTrades, clearTape } from "./tape.js";
import { listenForActions, onTrading } from "./trading.js";

const BADGE_MS = 500;  // the badge counts the seconds a feed has been down
let historyLoaded = false;

function onSnapshot(msg) {
  market.candles = new Map(msg.candles.map((c) => [c.time, c]));
  redrawCandles();
  clearTape();
  addTrades(msg.trades, 0);
  market.gaps = new Map(msg.gaps.map((g) => [g.id, g]));
  market.signals = new Map();
  onSignals(msg.signals || []);
  onTrading(msg.positions, msg.orders, true);
  setFeed(msg.feed);
  if (!historyLoaded) { historyLoaded = true; loadHistory(); }
}

function onMessage(msg) {
  market.messages += 1;
  switch (msg.type) {
    case "snapshot": onSnapshot(msg); break;
    case "trades": addTrades(msg.trades, msg.count); break;
    case "candles": updateCandles(msg.candles); break;
    case "feed": setFeed(msg.feed); break;
    case "gap": onGap(msg.gap, true); renderBadge(); break;
    case "signals": onSignals(msg.signals); break;
    case "orders": onTrading(msg.positions, msg.orders, false); break;
    case "error": banner(msg.error, "down"); break;
  }
}

listenForActions();
listenToControls();
setInterval(renderBadge, BADGE_MS);
keepSocket(cfg.socket, {
  onOpen: () => { market.socketOpen = true; renderBadge(); },
  onMessage,
  onClose: () => { market.socketOpen = false; renderBadge(); },
});
pollConsolidated();
