// The feed badge and the feed record it reads: page offline, waiting, feed down (for how long), recovering,
// recovered, live; the trade rate beside it. A feed going down also raises the banner.
import { banner, bannerKind } from "./banner.js";
import { $ } from "./config.js";
import { fmt, utc } from "./format.js";
import { market } from "./market.js";
import { tradeRate } from "./tape.js";

function setBadge(text, kind) {
  const badge = $("feed-badge");
  badge.textContent = text;
  badge.className = `badge badge-${kind}`;
}

export function renderBadge() {
  const now = Date.now();
  const filling = [...market.gaps.values()].filter((g) => g.state === "open" || g.state === "filling");
  if (!market.socketOpen) setBadge("page offline · reconnecting", "down");
  else if (!market.feed) {
    const none = market.messages > 0 && market.lastPrice === null;  // the snapshot came without a stored trade
    setBadge(none ? "no trades stored yet · waiting for the feed" : "waiting for the feed", "wait");
  }
  else if (market.feed.state !== "connected") {
    const since = market.downSince ? ` ${((now - market.downSince) / 1000).toFixed(1)} s` : "";
    setBadge(`feed ${market.feed.state === "down" ? "down" : "down · reconnecting"}${since}`, "down");
  } else if (filling.length) {
    setBadge(`recovering ${fmt(filling.reduce((n, g) => n + g.missing, 0))} trades…`, "recovering");
  } else if (market.recovered && now - market.recovered.at < 60000) {
    setBadge(`live · recovered ${fmt(market.recovered.count)} trades`, "recovered");
  } else setBadge("live", "live");
  $("trade-rate").textContent = tradeRate(now);
}

export function setFeed(feed) {
  const wasUp = market.feed && market.feed.state === "connected";
  market.feed = feed;
  if (feed && feed.state !== "connected") {
    if (market.downSince === null) market.downSince = Date.now();
    if (wasUp || !bannerKind()) {
      banner(`Feed down since ${utc(Date.now())} UTC · missed trades will be recovered when it is back`, "down");
    }
  } else {
    market.downSince = null;
  }
  renderBadge();
}
