// The gap list and the signal list beside the chart (each redraws the chart's markers), and the news of a gap:
// the banner says when missed trades are being recovered and when they are all back.
import { banner } from "./banner.js";
import { drawMarkers } from "./chart.js";
import { $ } from "./config.js";
import { fmt, utc } from "./format.js";
import { market } from "./market.js";

const GAP_ROWS = 5, SIGNAL_ROWS = 8;

function describeGap(g) {
  const ids = `ids ${fmt(g.first_id)}–${fmt(g.last_id)}`;
  if (g.state === "filled") return `filled: ${fmt(g.recovered)} trades recovered${g.seconds != null ? ` in ${g.seconds.toFixed(2)} s` : ""} (${ids})`;
  if (g.state === "unrecoverable") return `unrecoverable: ${g.reason} (${ids})`;
  return `filling: ${fmt(g.missing)} trades missing (${ids})`;
}

/** The exchange times the missing trades lie between (the stored trades either side of the ids), when known. */
const span = (g) => g.from == null ? "" : g.to == null || g.to === g.from ? `${utc(g.from)} ` : `${utc(g.from)}–${utc(g.to)} `;

export function renderGaps() {
  const list = $("gaps");
  list.replaceChildren();
  const gaps = [...market.gaps.values()].sort((a, b) => b.first_id - a.first_id);
  if (!gaps.length) list.innerHTML = '<li class="muted">none</li>';
  for (const g of gaps.slice(0, GAP_ROWS)) {
    const li = document.createElement("li");
    li.dataset.state = g.state;
    li.textContent = span(g) + describeGap(g);
    list.appendChild(li);
  }
  drawMarkers();
}

/** Merge signals (a snapshot's or a "signals" message's) and list the newest. */
export function onSignals(list) {
  for (const s of list) market.signals.set(s.time, s);
  const items = [...market.signals.values()].sort((a, b) => b.time - a.time);
  const ul = $("signals");
  ul.replaceChildren();
  if (!items.length) ul.innerHTML = '<li class="muted">none yet (decided on every closed 1m candle)</li>';
  for (const s of items.slice(0, SIGNAL_ROWS)) {
    const li = document.createElement("li");
    li.dataset.decision = s.decision;
    li.textContent = `${utc(s.time).slice(0, 5)} ${s.decision} · confidence ${(+s.confidence).toFixed(2)}`;
    li.title = `${s.strategy}\n${s.reasons.join("\n")}`;
    ul.appendChild(li);
  }
  renderGaps();
}

/** A gap's news from a "gap" message (`live`); the caller redraws the badge, which counts the trades still missing. */
export function onGap(g, live) {
  market.gaps.set(g.id, g);
  if (live && g.state === "filled") {
    market.recovered = { count: g.recovered, seconds: g.seconds, at: Date.now() };
    banner(`Gap filled: ${fmt(g.recovered)} trades recovered${g.seconds != null ? ` in ${g.seconds.toFixed(2)} s` : ""}; the chart is complete`, "ok", 20000);
  } else if (live && (g.state === "open" || g.state === "filling")) {
    banner(`Back live · recovering ${fmt(g.missing)} missed trades…`, "down");
  }
  renderGaps();
}
