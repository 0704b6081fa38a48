// The trading panels: every open position (of any symbol) and the recently closed ones, and the recent orders; from
// the snapshot, then merged by id from "orders" messages (the stream's trader, a staff action), never older over
// newer. Staff get a Close button per open position and a Cancel button per open order; the server checks staff
// and CSRF. Visitors who may not see trading data get neither the panels (the page has a note instead) nor the
// records (their snapshot says "trading": false and carries none; "orders" messages never reach them).
import { banner } from "./banner.js";
import { $ } from "./config.js";
import { HttpError, postJson } from "./http.js";
import { market } from "./market.js";

const trading = $("trading");
const staff = trading !== null && trading.dataset.closeUrl !== undefined;
const CLOSED_ROWS = 10, ORDER_ROWS = 30;
const OPEN_ORDER = new Set(["PENDING", "NEW", "PARTIALLY_FILLED"]);
const EXIT = { stop_loss: "stop-loss", take_profit: "take-profit", signal: "SELL signal", manual: "closed by hand" };
// Prices, quantities and P&L arrive printed by the server (markets.numbers.plain, to each record's own instrument)
// and are shown as they come; the sign of a P&L only picks its colour.
const plain = (s) => s === null || s === undefined ? "—" : String(s);
const signedPnl = (s) => {
  if (s === null || s === undefined) return { text: "—" };
  const up = !String(s).startsWith("-") && /[1-9]/.test(s), down = String(s).startsWith("-");
  return { text: `${up ? "+" : ""}${s}`, cls: up ? "up" : down ? "down" : "" };
};
const stamp = (ms) => new Date(ms).toISOString().slice(5, 19).replace("T", " ");

function tableRow(cells, data) {
  const tr = document.createElement("tr");
  Object.assign(tr.dataset, data);
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c);
    else if (c && typeof c === "object") {
      td.textContent = c.text;
      if (c.cls) td.className = c.cls;
      if (c.title) td.title = c.title;
    } else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function actionButton(action, id, text) {
  const b = document.createElement("button");
  Object.assign(b, { type: "button", textContent: text });
  Object.assign(b.dataset, { action, id });
  return b;
}

function symbolCell(r) {
  const span = document.createElement("span");
  span.textContent = r.symbol;
  span.title = r.exchange;
  if (r.mode === "paper") return span;  // the default; testnet and live records are tagged
  const tag = document.createElement("span");
  tag.className = `mark mark-mode mark-${r.mode}`;
  tag.textContent = r.mode;
  const both = document.createDocumentFragment();
  both.append(span, tag);
  return both;
}

function emptyRow(table, text) {
  const tr = tableRow([{ text, cls: "muted" }], {});
  tr.className = "none";
  tr.firstChild.colSpan = table.tHead.rows[0].cells.length;
  return tr;
}

function renderPositions() {
  const all = [...market.positions.values()];
  const open = all.filter((p) => p.status === "open").sort((a, b) => a.opened_at - b.opened_at);
  const closed = all.filter((p) => p.status !== "open")
    .sort((a, b) => (b.closed_at || 0) - (a.closed_at || 0)).slice(0, CLOSED_ROWS);
  const rows = document.createDocumentFragment();
  for (const p of [...open, ...closed]) {
    const isOpen = p.status === "open";
    const cells = [symbolCell(p), plain(p.qty), plain(p.entry_price), plain(p.stop_price), plain(p.take_profit_price),
      plain(isOpen ? p.last_price : p.exit_price), signedPnl(isOpen ? p.unrealised_pnl : p.realised_pnl),
      isOpen ? "open" : `closed · ${EXIT[p.exit_reason] || p.exit_reason || "?"}`];
    if (staff) cells.push(isOpen ? actionButton("close", p.id, "Close") : "");
    const tr = tableRow(cells, { id: p.id, status: p.status, symbol: p.symbol });
    tr.title = `${p.mode} · ${p.exchange} · opened ${stamp(p.opened_at)} UTC` + (p.closed_at ? ` · closed ${stamp(p.closed_at)} UTC` : "");
    rows.appendChild(tr);
  }
  if (!rows.childNodes.length) rows.appendChild(emptyRow($("positions"), "no position"));
  $("positions").tBodies[0].replaceChildren(rows);
  $("positions-note").textContent = open.length ? `· ${open.length} open` : "";
}

function renderOrders() {
  const list = [...market.orders.values()]
    .sort((a, b) => b.created_at - a.created_at || (b.id > a.id ? 1 : -1)).slice(0, ORDER_ROWS);
  const rows = document.createDocumentFragment();
  for (const o of list) {
    const isOpen = OPEN_ORDER.has(o.status);
    const [shown, what] = o.avg_price !== null ? [o.avg_price, "average fill"] : o.price !== null
      ? [o.price, "limit"] : [o.stop_price, "trigger"];
    const cells = [stamp(o.created_at), symbolCell(o), { text: o.side, cls: o.side === "BUY" ? "up" : "down" }, o.type,
      o.purpose.replace("_", "-"), o.status, plain(o.qty), { text: plain(shown), title: what },
      { text: o.reason || "", cls: "reason", title: o.reason || "" }];
    if (staff) cells.push(isOpen ? actionButton("cancel", o.id, "Cancel") : "");
    const tr = tableRow(cells, { id: o.id, status: o.status, symbol: o.symbol });
    tr.title = o.client_order_id;
    if (!isOpen && o.status !== "FILLED") tr.className = "done";
    rows.appendChild(tr);
  }
  if (!list.length) rows.appendChild(emptyRow($("orders"), "no order"));
  $("orders").tBodies[0].replaceChildren(rows);
}

// A record is replaced only by one at least as new: a late push of an old unrealised PnL never reopens a close.
const merge = (map, rows) => {
  for (const r of rows || []) {
    const known = map.get(r.id);
    if (!known || (r.updated_at || 0) >= (known.updated_at || 0)) map.set(r.id, r);
  }
};

/** Merge positions and orders (`fresh`: a snapshot, which replaces what the page had) and draw both tables. */
export function onTrading(positions, orders, fresh) {
  if (trading === null) return;
  if (fresh) { market.positions = new Map(); market.orders = new Map(); }
  merge(market.positions, positions);
  merge(market.orders, orders);
  renderPositions();
  renderOrders();
}

async function act(event) {
  const b = event.target.closest("button[data-action]");
  if (!b || b.disabled) return;
  const closing = b.dataset.action === "close";
  const row = closing ? market.positions.get(b.dataset.id) : market.orders.get(b.dataset.id);
  if (!row) return;
  const what = closing ? `Close the ${row.mode} ${row.symbol} position (${plain(row.qty)}) at the market now?`
    : `Cancel the ${row.symbol} ${row.purpose.replace("_", "-")} order ${row.client_order_id}?`;
  if (!window.confirm(what)) return;
  const url = (closing ? trading.dataset.closeUrl : trading.dataset.cancelUrl).replace("ID", encodeURIComponent(b.dataset.id));
  b.disabled = true;
  try {
    const body = await postJson(url, {});
    onTrading(body.positions, body.orders, false);
    banner(body.detail, "ok", 5000);
  } catch (err) {
    const why = err instanceof HttpError ? `refused (${err.status}): ${err.reason || err.statusText}` : `failed: ${err.message}`;
    banner(`${closing ? "Close" : "Cancel"} ${why}`, "down", 10000);
    b.disabled = false;
  }
}

/** Staff's Close and Cancel buttons (one listener on the panels; the buttons come and go with every render). */
export function listenForActions() {
  if (trading !== null) trading.addEventListener("click", act);
}
