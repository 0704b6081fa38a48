// The banner over the chart: one line of news (feed down, gap filled, an action refused), hidden again after a
// while when the news is passing.
import { $ } from "./config.js";

let timer = null;

export function banner(text, kind, hideAfterMs) {
  const el = $("chart-banner");
  el.textContent = text;
  el.dataset.kind = kind;
  el.className = kind === "ok" ? "banner ok" : "banner";
  el.hidden = false;
  clearTimeout(timer);
  if (hideAfterMs) timer = setTimeout(() => { el.hidden = true; el.dataset.kind = ""; }, hideAfterMs);
}

/** The kind of news the banner shows now ("" or undefined when none). */
export const bannerKind = () => $("chart-banner").dataset.kind;
