// Text for this instrument's numbers and times: exchange decimals cut to its tick and step sizes (strings, never
// floats), counts with thousands separators, UTC clock times.
import { cfg } from "./config.js";

export const utc = (ms) => new Date(ms).toISOString().slice(11, 23);
export const fmt = (n) => Number(n).toLocaleString("en-US");

const digits = (s, d) => {
  if (d === null || d === undefined) return s;
  const [whole, frac = ""] = String(s).split(".");
  return d ? `${whole}.${(frac + "0".repeat(d)).slice(0, d)}` : whole;
};
export const price = (s) => digits(s, cfg.price_decimals);
export const qty = (s) => digits(s, cfg.qty_decimals);
