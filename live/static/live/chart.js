// The candle chart (lightweight-charts, a classic script that defines window.LightweightCharts before this module
// runs): candles and volume from the socket, earlier history from the API, a legend for the minutes that are not
// this venue's own trades, and the markers of gaps and signals.
import { banner } from "./banner.js";
import { $, cfg, DOWN, UP } from "./config.js";
import { fmt } from "./format.js";
import { getJson } from "./http.js";
import { market } from "./market.js";

const LC = window.LightweightCharts;
const BORROWED = "#a78bfa", QUIET = "#64748b";
const HISTORY_MINUTES = 180;  // the chart opens on three hours

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

/** Draw every known candle again (a snapshot, history, or a minute that was missing altogether). */
export function redrawCandles() {
  const list = [...market.candles.values()].sort((a, b) => a.time - b.time);
  candleSeries.setData(list.map(bar));
  volumeSeries.setData(list.map(vol));
  lastBarTime = list.length ? list[list.length - 1].time : 0;
  legend();
}

/** Merge candles from a "candles" message: the live minute moves on, a minute a gap fill rebuilt is redrawn. */
export function updateCandles(list) {
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

/** Missing history before the live candles, from the API (MongoDB first, the exchange for the rest). */
export async function loadHistory() {
  const live = [...market.candles.keys()];
  const end = live.length ? Math.min(...live) : Math.floor(Date.now() / 60000) * 60000;
  const start = end - HISTORY_MINUTES * 60000;
  if (live.length >= HISTORY_MINUTES) return;
  const query = new URLSearchParams({ exchange: cfg.exchange, symbol: cfg.symbol, interval: "1m", start, end });
  try {
    const body = await getJson(`/api/v1/candles?${query}`);
    for (const c of body.candles) {
      const time = Date.parse(c.open_time);
      if (!market.candles.has(time)) market.candles.set(time, { ...c, time, closed: true });
    }
    redrawCandles();
    chart.timeScale().scrollToRealTime();
    if (!market.candles.size && market.lastPrice === null) {  // a newly added instrument: true, not an error
      banner(`No trades stored yet for ${cfg.symbol}: the chart starts with its first trade`, "ok", 10000);
    }
  } catch (err) {
    banner(`Earlier candles could not be loaded (${err.message}); live data goes on`, "down", 10000);
  }
}

/** Mark every gap (by state) and every BUY/SELL signal on its minute. */
export function drawMarkers() {
  const gaps = [...market.gaps.values()].sort((a, b) => b.first_id - a.first_id);  // newest first, as listed
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
