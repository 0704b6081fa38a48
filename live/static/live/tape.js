// The last price and the trade tape: the newest trades on top (at most TAPE_ROWS), the price coloured by its last
// move and repeated in the tab's title, and the trade rate of the last five seconds for the badge.
import { $, cfg } from "./config.js";
import { fmt, utc } from "./format.js";
import { market } from "./market.js";

const TAPE_ROWS = 50;
const RATE_MS = 5000;
const rate = [];  // [page time, count] of recent trade messages, for trades/s

export function clearTape() {
  $("tape").tBodies[0].replaceChildren();
}

export function addTrades(trades, count) {
  if (!trades.length) return;
  const body = $("tape").tBodies[0];
  const rows = document.createDocumentFragment();
  for (const t of trades.slice(-TAPE_ROWS).reverse()) {
    const tr = document.createElement("tr");
    tr.className = t.side === "buy" ? "up" : "down";
    for (const text of [utc(t.time), t.price, t.qty]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    rows.appendChild(tr);
  }
  body.insertBefore(rows, body.firstChild);
  while (body.rows.length > TAPE_ROWS) body.deleteRow(-1);
  const last = trades[trades.length - 1];
  const el = $("last-price");
  if (market.lastPrice !== null && +last.price !== +market.lastPrice) {
    el.className = +last.price > +market.lastPrice ? "up" : "down";
  }
  market.lastPrice = last.price;
  el.textContent = last.price;
  $("price-time").textContent = utc(last.time) + " UTC";
  document.title = `${last.price} ${cfg.symbol} · tradingsite`;
  rate.push([Date.now(), count]);
}

/** Trades per second over the last five seconds at page time `now`, as text ("" when none came). */
export function tradeRate(now) {
  while (rate.length && now - rate[0][0] > RATE_MS) rate.shift();
  return rate.length ? `${fmt(Math.round(rate.reduce((n, r) => n + r[1], 0) / (RATE_MS / 1000)))}/s` : "";
}
