// The live market page: one WebSocket (/ws/market/<exchange>/<symbol>/) feeds the chart, the last price, the
// trade tape, the feed badge, the gap list, the signals and the trading panels (positions and orders of every
// symbol); the consolidated price of the base asset is polled from the API. The socket reconnects by itself
// (backoff with jitter) and a reconnect starts again from the server's snapshot, so the page never shows a stale mix.
(() => {
  "use strict";
  const cfg = JSON.parse(document.getElementById("market-config").textContent);
  const LC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  const UP = "#16a34a", DOWN = "#dc2626", BORROWED = "#a78bfa", QUIET = "#64748b";
  const TAPE_ROWS = 50;
  const HISTORY_MINUTES = 180;  // the chart opens on three hours

  // Everything the page knows; exposed for the browser test and for a curious console.
  const market = {
    candles: new Map(),   // open time (ms) -> candle as sent by the server (decimal strings)
    feed: null,           // the Feed record
    gaps: new Map(),      // gap id -> gap
    signals: new Map(),   // candle open time (ms) -> the strategy's BUY/SELL on it
    positions: new Map(), // position id -> position (orders.live shape: decimal strings, epoch ms)
    orders: new Map(),    // order id -> order
    lastPrice: null,
    socketOpen: false,
    downSince: null,      // when the feed was first seen not connected (ms, page clock)
    recovered: null,      // {count, seconds, at}: the last filled gap, for the badge
    messages: 0,
  };
  window.market = market;

  // ---- chart -------------------------------------------------------------------------------------
  const chart = LC.createChart($("chart"), {
    autoSize: true,
    layout: { background: { color: "#0f172a" }, textColor: "#cbd5e1" },
    grid: { vertLines: { color: "#1e293b" }, horzLines: { color: "#1e293b" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#334155" },
    rightPriceScale: { borderColor: "#334155" },
    crosshair: { mode: LC.CrosshairMode.Normal },
  });
  const candleSeries = chart.addSeries(LC.CandlestickSeries, {
    upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
  });
  const volumeSeries = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
  volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  const markers = LC.createSeriesMarkers(candleSeries, []);
  let lastBarTime = 0;

  // Candles that are not this venue's own trades are drawn apart: a quiet minute (flat, no trade) in grey, a
  // minute this venue can no longer serve, filled from another venue, in violet with a legend naming it.
  const OWN = new Set(["trades", "exchange"]);
  const borrowedFrom = (c) => (c.source || "").split("+").filter((s) => s && !OWN.has(s));
  const paint = (color) => ({ color, borderColor: color, wickColor: color });
  function bar(c) {
    const b = { time: c.time / 1000, open: +c.open, high: +c.high, low: +c.low, close: +c.close };
    if (borrowedFrom(c).length) return { ...b, ...paint(BORROWED) };
    if (c.synthetic) return { ...b, ...paint(QUIET) };
    return b;
  }

  function legend() {
    const from = new Set();
    let quiet = 0;
    for (const c of market.candles.values()) {
      borrowedFrom(c).forEach((s) => from.add(s));
      if (c.synthetic) quiet += 1;
    }
    const parts = [];
    if (from.size) parts.push(`<span class="swatch" style="background:${BORROWED}"></span>filled from ${[...from].sort().join(", ")}: minutes ${cfg.exchange} no longer serves`);
    if (quiet) parts.push(`<span class="swatch" style="background:${QUIET}"></span>quiet minute (no trade)`);
    $("chart-legend").innerHTML = parts.join("<br>");
    $("chart-legend").hidden = !parts.length;
  }
  const vol = (c) => ({ time: c.time / 1000, value: +c.volume, color: +c.close >= +c.open ? "#16a34a80" : "#dc262680" });

  function redrawCandles() {
    const list = [...market.candles.values()].sort((a, b) => a.time - b.time);
    candleSeries.setData(list.map(bar));
    volumeSeries.setData(list.map(vol));
    lastBarTime = list.length ? list[list.length - 1].time : 0;
    legend();
  }

  function updateCandles(list) {
    let full = false;
    for (const c of list) {
      const known = market.candles.has(c.time);
      market.candles.set(c.time, c);
      if (c.time >= lastBarTime) {
        candleSeries.update(bar(c));
        volumeSeries.update(vol(c));
        lastBarTime = c.time;
      } else if (known) {
        candleSeries.update(bar(c), true);  // a minute a gap fill rebuilt
        volumeSeries.update(vol(c), true);
      } else {
        full = true;  // a minute that was missing altogether: draw the series again
      }
    }
    if (full) redrawCandles();
    else legend();
  }

  // Missing history before the live candles comes from the API (MongoDB first, the exchange for the rest).
  async function loadHistory() {
    const live = [...market.candles.keys()];
    const end = live.length ? Math.min(...live) : Math.floor(Date.now() / 60000) * 60000;
    const start = end - HISTORY_MINUTES * 60000;
    if (live.length >= HISTORY_MINUTES) return;
    const query = new URLSearchParams({ exchange: cfg.exchange, symbol: cfg.symbol, interval: "1m", start, end });
    try {
      const resp = await fetch(`/api/v1/candles?${query}`);
      if (!resp.ok) throw new Error(`${resp.status} ${resp.statusText}`);
      const body = await resp.json();
      for (const c of body.candles) {
        const time = Date.parse(c.open_time);
        if (!market.candles.has(time)) market.candles.set(time, { ...c, time, closed: true });
      }
      redrawCandles();
      chart.timeScale().scrollToRealTime();
    } catch (err) {
      banner(`Earlier candles could not be loaded (${err.message}); live data goes on`, "down", 10000);
    }
  }

  // ---- price and tape ----------------------------------------------------------------------------
  const utc = (ms) => new Date(ms).toISOString().slice(11, 23);
  // Exchange decimals cut to the instrument's tick and step sizes (strings, never floats).
  const digits = (s, d) => {
    if (d === null || d === undefined) return s;
    const [whole, frac = ""] = String(s).split(".");
    return d ? `${whole}.${(frac + "0".repeat(d)).slice(0, d)}` : whole;
  };
  const price = (s) => digits(s, cfg.price_decimals);
  const qty = (s) => digits(s, cfg.qty_decimals);
  const rate = [];  // [page time, count] of recent trade messages, for trades/s

  function addTrades(trades, count) {
    if (!trades.length) return;
    const body = $("tape").tBodies[0];
    const rows = document.createDocumentFragment();
    for (const t of trades.slice(-TAPE_ROWS).reverse()) {
      const tr = document.createElement("tr");
      tr.className = t.side === "buy" ? "up" : "down";
      for (const text of [utc(t.time), price(t.price), qty(t.qty)]) {
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
    el.textContent = price(last.price);
    $("price-time").textContent = utc(last.time) + " UTC";
    document.title = `${price(last.price)} ${cfg.symbol} · tradingsite`;
    rate.push([Date.now(), count]);
  }

  // ---- feed badge, gaps, banner ------------------------------------------------------------------
  const fmt = (n) => Number(n).toLocaleString("en-US");

  function setBadge(text, kind) {
    const badge = $("feed-badge");
    badge.textContent = text;
    badge.className = `badge badge-${kind}`;
  }

  function renderBadge() {
    const now = Date.now();
    const filling = [...market.gaps.values()].filter((g) => g.state === "open" || g.state === "filling");
    if (!market.socketOpen) setBadge("page offline · reconnecting", "down");
    else if (!market.feed) setBadge("waiting for the feed", "wait");
    else if (market.feed.state !== "connected") {
      const since = market.downSince ? ` ${((now - market.downSince) / 1000).toFixed(1)} s` : "";
      setBadge(`feed ${market.feed.state === "down" ? "down" : "down · reconnecting"}${since}`, "down");
    } else if (filling.length) {
      setBadge(`recovering ${fmt(filling.reduce((n, g) => n + g.missing, 0))} trades…`, "recovering");
    } else if (market.recovered && now - market.recovered.at < 60000) {
      setBadge(`live · recovered ${fmt(market.recovered.count)} trades`, "recovered");
    } else setBadge("live", "live");
    while (rate.length && now - rate[0][0] > 5000) rate.shift();
    $("trade-rate").textContent = rate.length ? `${fmt(Math.round(rate.reduce((n, r) => n + r[1], 0) / 5))}/s` : "";
  }

  function setFeed(feed) {
    const wasUp = market.feed && market.feed.state === "connected";
    market.feed = feed;
    if (feed && feed.state !== "connected") {
      if (market.downSince === null) market.downSince = Date.now();
      if (wasUp || !$("chart-banner").dataset.kind) {
        banner(`Feed down since ${utc(Date.now())} UTC · missed trades will be recovered when it is back`, "down");
      }
    } else {
      market.downSince = null;
    }
    renderBadge();
  }

  let bannerTimer = null;
  function banner(text, kind, hideAfterMs) {
    const el = $("chart-banner");
    el.textContent = text;
    el.dataset.kind = kind;
    el.className = kind === "ok" ? "banner ok" : "banner";
    el.hidden = false;
    clearTimeout(bannerTimer);
    if (hideAfterMs) bannerTimer = setTimeout(() => { el.hidden = true; el.dataset.kind = ""; }, hideAfterMs);
  }

  function describeGap(g) {
    const ids = `ids ${fmt(g.first_id)}–${fmt(g.last_id)}`;
    if (g.state === "filled") return `filled: ${fmt(g.recovered)} trades recovered${g.seconds != null ? ` in ${g.seconds.toFixed(2)} s` : ""} (${ids})`;
    if (g.state === "unrecoverable") return `unrecoverable: ${g.reason} (${ids})`;
    return `filling: ${fmt(g.missing)} trades missing (${ids})`;
  }

  function renderGaps() {
    const list = $("gaps");
    list.replaceChildren();
    const gaps = [...market.gaps.values()].sort((a, b) => b.first_id - a.first_id);
    if (!gaps.length) list.innerHTML = '<li class="muted">none</li>';
    for (const g of gaps.slice(0, 5)) {
      const li = document.createElement("li");
      li.dataset.state = g.state;
      li.textContent = (g.from ? `${utc(g.from)} ` : "") + describeGap(g);
      list.appendChild(li);
    }
    const ms = gaps.filter((g) => g.from).map((g) => ({
      time: Math.floor(g.from / 60000) * 60,
      position: "aboveBar",
      shape: "arrowDown",
      color: g.state === "filled" ? "#60a5fa" : g.state === "unrecoverable" ? DOWN : "#f59e0b",
      text: g.state === "filled" ? `gap filled: ${fmt(g.recovered)}` : g.state === "unrecoverable" ? "gap lost" : `gap: ${fmt(g.missing)}`,
    }));
    for (const s of market.signals.values()) {
      const buy = s.decision === "BUY";
      ms.push({ time: s.time / 1000, position: buy ? "belowBar" : "aboveBar", shape: buy ? "arrowUp" : "arrowDown",
                color: buy ? UP : DOWN, text: `${s.decision} ${(+s.confidence).toFixed(2)}` });
    }
    markers.setMarkers(ms.sort((a, b) => a.time - b.time));
  }

  // ---- signals ------------------------------------------------------------------------------------
  function onSignals(list) {
    for (const s of list) market.signals.set(s.time, s);
    const items = [...market.signals.values()].sort((a, b) => b.time - a.time);
    const ul = $("signals");
    ul.replaceChildren();
    if (!items.length) ul.innerHTML = '<li class="muted">none yet (decided on every closed 1m candle)</li>';
    for (const s of items.slice(0, 8)) {
      const li = document.createElement("li");
      li.dataset.decision = s.decision;
      li.textContent = `${utc(s.time).slice(0, 5)} ${s.decision} · confidence ${(+s.confidence).toFixed(2)}`;
      li.title = `${s.strategy}\n${s.reasons.join("\n")}`;
      ul.appendChild(li);
    }
    renderGaps();
  }

  function onGap(g, live) {
    market.gaps.set(g.id, g);
    if (live && g.state === "filled") {
      market.recovered = { count: g.recovered, seconds: g.seconds, at: Date.now() };
      banner(`Gap filled: ${fmt(g.recovered)} trades recovered${g.seconds != null ? ` in ${g.seconds.toFixed(2)} s` : ""}; the chart is complete`, "ok", 20000);
    } else if (live && (g.state === "open" || g.state === "filling")) {
      banner(`Back live · recovering ${fmt(g.missing)} missed trades…`, "down");
    }
    renderGaps();
    renderBadge();
  }

  // ---- positions and orders ------------------------------------------------------------------------
  // Every open position (of any symbol) and the recently closed ones, and the recent orders: from the snapshot,
  // then merged by id from "orders" messages (the stream's trader, a staff action), never older over newer. Staff
  // get a Close button per open position and a Cancel button per open order; the server checks staff and CSRF.
  // Visitors who may not see trading data get neither the panels (the page has a note instead) nor the records
  // (their snapshot says "trading": false and carries none; "orders" messages never reach them).
  const trading = $("trading");
  const staff = trading !== null && trading.dataset.closeUrl !== undefined;
  const CLOSED_ROWS = 10, ORDER_ROWS = 30;
  const OPEN_ORDER = new Set(["PENDING", "NEW", "PARTIALLY_FILLED"]);
  const EXIT = { stop_loss: "stop-loss", take_profit: "take-profit", signal: "SELL signal", manual: "closed by hand" };
  // Stored decimals carry trailing zeros; any symbol may show here, so they are trimmed rather than cut to this
  // instrument's tick size.
  const plain = (s) => s === null || s === undefined ? "—" : String(s).includes(".") ? String(s).replace(/\.?0+$/, "") : String(s);
  const signedPnl = (s) => {
    if (s === null || s === undefined) return { text: "—" };
    const n = +s;
    return { text: `${n > 0 ? "+" : ""}${n.toFixed(2)}`, cls: n > 0 ? "up" : n < 0 ? "down" : "", title: s };
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

  function onTrading(positions, orders, fresh) {
    if (trading === null) return;
    if (fresh) { market.positions = new Map(); market.orders = new Map(); }
    merge(market.positions, positions);
    merge(market.orders, orders);
    renderPositions();
    renderOrders();
  }

  if (trading !== null) trading.addEventListener("click", async (event) => {
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
      const resp = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": cfg.csrf },
        body: "{}",
        credentials: "same-origin",
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) throw new Error(`refused (${resp.status}): ${body.detail || body.error || resp.statusText}`);
      onTrading(body.positions, body.orders, false);
      banner(body.detail, "ok", 5000);
    } catch (err) {
      const why = err.message.startsWith("refused") ? err.message : `failed: ${err.message}`;
      banner(`${closing ? "Close" : "Cancel"} ${why}`, "down", 10000);
      b.disabled = false;
    }
  });

  // ---- the socket ----------------------------------------------------------------------------------
  let attempt = 0;
  let historyLoaded = false;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${cfg.socket}`);
    ws.onopen = () => { attempt = 0; market.socketOpen = true; renderBadge(); };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      market.messages += 1;
      switch (msg.type) {
        case "snapshot":
          market.candles = new Map(msg.candles.map((c) => [c.time, c]));
          redrawCandles();
          $("tape").tBodies[0].replaceChildren();
          addTrades(msg.trades, 0);
          market.gaps = new Map(msg.gaps.map((g) => [g.id, g]));
          market.signals = new Map();
          onSignals(msg.signals || []);
          onTrading(msg.positions, msg.orders, true);
          setFeed(msg.feed);
          if (!historyLoaded) { historyLoaded = true; loadHistory(); }
          break;
        case "trades": addTrades(msg.trades, msg.count); break;
        case "candles": updateCandles(msg.candles); break;
        case "feed": setFeed(msg.feed); break;
        case "gap": onGap(msg.gap, true); break;
        case "signals": onSignals(msg.signals); break;
        case "orders": onTrading(msg.positions, msg.orders, false); break;
        case "error": banner(msg.error, "down"); break;
      }
    };
    ws.onclose = (event) => {
      market.socketOpen = false;
      renderBadge();
      if (event.code === 4404) return;  // no such instrument: retrying will not help
      attempt += 1;
      const delay = Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
      setTimeout(connect, delay);
    };
  }

  // ---- consolidated price -------------------------------------------------------------------------
  // The median across venues of this instrument's base asset, polled from the API (it changes with every
  // venue's trades, not only this one's). Stale venues are greyed, outliers red; neither is in the median.
  const CONSOLIDATED_MS = 2000;
  market.consolidated = null;  // the last answer of /api/v1/consolidated

  const age = (ms) => ms < 60000 ? `${Math.round(ms / 1000)} s` : ms < 3600000 ? `${Math.round(ms / 60000)} min`
    : `${Math.round(ms / 3600000)} h`;
  const bps = (s) => s === null ? "—" : +s > 0 ? `+${s}` : s;

  function renderConsolidated(c) {
    $("cons-price").textContent = c.price === null ? "—" : price(c.price);
    $("cons-note").textContent = c.price === null ? c.reason : "";
    $("cons-used").textContent = `· ${c.venues_used}/${c.venues.length} venues`;
    const rows = document.createDocumentFragment();
    for (const v of c.venues) {
      const tr = document.createElement("tr");
      tr.className = [v.stale && "stale", v.outlier && "outlier",
        v.exchange === cfg.exchange && v.symbol === cfg.symbol && "current"].filter(Boolean).join(" ");
      tr.dataset.venue = `${v.exchange}:${v.symbol}`;
      tr.title = v.ts ? `last trade ${v.ts} (${age(v.age_ms)} ago), id ${v.trade_id}` : "no stored trade";
      for (const text of [`${v.exchange} ${v.symbol}`, v.price === null ? "—" : price(v.price), bps(v.deviation_bps)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      for (const [on, mark] of [[v.stale, "stale"], [v.outlier, "outlier"]]) {
        if (!on) continue;
        const span = document.createElement("span");
        span.className = `mark mark-${mark}`;
        span.textContent = mark;
        td.appendChild(span);
      }
      tr.appendChild(td);
      rows.appendChild(tr);
    }
    $("cons-venues").tBodies[0].replaceChildren(rows);
  }

  async function pollConsolidated() {
    if (!document.hidden) {
      try {
        const resp = await fetch(`/api/v1/consolidated?${new URLSearchParams({ base: cfg.base })}`);
        const body = await resp.json().catch(() => ({}));
        if (!resp.ok) throw new Error(body.detail || body.error || `${resp.status} ${resp.statusText}`);
        market.consolidated = body;
        renderConsolidated(body);
      } catch (err) {
        $("cons-note").textContent = `unavailable (${err.message})`;
      }
    }
    setTimeout(pollConsolidated, CONSOLIDATED_MS);  // 2 s after the last answer: slow answers never pile up
  }

  // ---- controls ------------------------------------------------------------------------------------
  $("symbol-switcher").addEventListener("change", (e) => { location.href = e.target.value; });
  const drop = $("drop-button");
  if (drop) {
    drop.addEventListener("click", async () => {
      drop.disabled = true;
      try {
        const resp = await fetch(drop.dataset.url, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": cfg.csrf },
          body: JSON.stringify({ seconds: 10, mode: $("drop-mode").value }),
          credentials: "same-origin",
        });
        const body = await resp.json().catch(() => ({}));
        if (!resp.ok) banner(`Drop refused (${resp.status}): ${body.detail || body.error || resp.statusText}`, "down", 10000);
      } catch (err) {
        banner(`Drop failed: ${err}`, "down", 10000);
      } finally {
        setTimeout(() => { drop.disabled = false; }, 2000);
      }
    });
  }

  setInterval(renderBadge, 500);
  connect();
  pollConsolidated();
})();
