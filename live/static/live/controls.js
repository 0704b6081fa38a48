// The header's controls: the instrument switcher, and the staff-only button that takes the live socket down for
// ten seconds (the stream recovers the missed trades from REST; the badge and the banner show it happen). The
// endpoint answers once the stream acknowledged the drop; when none did, the banner says so with the server's reason.
import { banner } from "./banner.js";
import { $ } from "./config.js";
import { HttpError, postJson } from "./http.js";

const DROP_SECONDS = 10;
const DROP_COOLDOWN_MS = 2000;  // one click, one drop: the button rests a moment after each

async function dropFeed(drop) {
  drop.disabled = true;
  try {
    await postJson(drop.dataset.url, { seconds: DROP_SECONDS, mode: $("drop-mode").value });
  } catch (err) {
    // 4xx: the request was refused; 503/504: it did not reach a stream (Redis away, or no stream acknowledged it).
    const what = err instanceof HttpError && err.status < 500 ? "Drop refused" : "Drop did not reach the stream";
    if (err instanceof HttpError) banner(`${what} (${err.status}): ${err.reason || err.statusText}`, "down", 10000);
    else banner(`Drop failed: ${err}`, "down", 10000);
  } finally {
    setTimeout(() => { drop.disabled = false; }, DROP_COOLDOWN_MS);
  }
}

export function listenToControls() {
  $("symbol-switcher").addEventListener("change", (e) => { location.href = e.target.value; });
  const drop = $("drop-button");
  if (drop) drop.addEventListener("click", () => dropFeed(drop));
}
