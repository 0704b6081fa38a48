// The page's one way to call the API: getJson for reads, postJson for staff actions (a JSON body with Django's CSRF
// header and the session cookie). An error status throws HttpError with the status and the server's own reason;
// a network failure throws fetch's own TypeError.
import { cfg } from "./config.js";

export class HttpError extends Error {
  constructor(resp, body) {
    super(`${resp.status} ${resp.statusText}`);
    this.name = "HttpError";
    this.status = resp.status;
    this.statusText = resp.statusText;
    // DRF answers {"detail": ...}, the site's views {"error": ..., "detail": ...}; a proxy's page carries neither.
    this.reason = body.detail || body.error || "";
  }
}

async function send(url, init) {
  const resp = await fetch(url, init);
  if (!resp.ok) throw new HttpError(resp, await resp.json().catch(() => ({})));
  return resp;
}

/** The JSON answer of a GET; a body that is not JSON throws. */
export async function getJson(url) {
  return (await send(url)).json();
}

/** POST `data` as JSON with the CSRF token; resolves to the JSON answer ({} when an accepted action sent none). */
export async function postJson(url, data) {
  const resp = await send(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": cfg.csrf },
    body: JSON.stringify(data),
    credentials: "same-origin",
  });
  return resp.json().catch(() => ({}));
}
