// The consolidated price: the median across venues of this instrument's base asset, polled from the API (it changes
// with every venue's trades, not only this one's). Stale venues are greyed, outliers red; neither is in the median.
import { $, cfg } from "./config.js";
import { getJson } from "./http.js";
import { market } from "./market.js";

const CONSOLIDATED_MS = 2000;

const age = (ms) => ms < 60000 ? `${Math.round(ms / 1000)} s` : ms < 3600000 ? `${Math.round(ms / 60000)} min`
  : `${Math.round(ms / 3600000)} h`;
const bps = (s) => s === null ? "—" : +s > 0 ? `+${s}` : s;

function renderConsolidated(c) {
  $("cons-price").textContent = c.price === null ? "—" : c.price;
  $("cons-note").textContent = c.price === null ? c.reason : "";
  $("cons-used").textContent = `· ${c.venues_used}/${c.venues.length} venues`;
  const rows = document.createDocumentFragment();
  for (const v of c.venues) {
    const tr = document.createElement("tr");
    tr.className = [v.stale && "stale", v.outlier && "outlier",
      v.exchange === cfg.exchange && v.symbol === cfg.symbol && "current"].filter(Boolean).join(" ");
    tr.dataset.venue = `${v.exchange}:${v.symbol}`;
    tr.title = v.ts ? `last trade ${v.ts} (${age(v.age_ms)} ago), id ${v.trade_id}` : "no stored trade";
    for (const text of [`${v.exchange} ${v.symbol}`, v.price === null ? "—" : v.price, bps(v.deviation_bps)]) {
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

/** Poll for as long as the page lives, skipping the request while the tab is hidden. */
export async function pollConsolidated() {
  if (!document.hidden) {
    try {
      const body = await getJson(`/api/v1/consolidated?${new URLSearchParams({ base: cfg.base })}`);
      market.consolidated = body;
      renderConsolidated(body);
    } catch (err) {
      $("cons-note").textContent = `unavailable (${err.reason || err.message})`;
    }
  }
  setTimeout(pollConsolidated, CONSOLIDATED_MS);  // 2 s after the last answer: slow answers never pile up
}
