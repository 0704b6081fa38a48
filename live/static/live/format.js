// Text for counts and times. Prices and quantities arrive already printed by the server's one rule
// (markets.numbers.plain: exact, to the instrument's tick and step) and are shown as they come, never through a
// JavaScript Number.
export const utc = (ms) => new Date(ms).toISOString().slice(11, 23);
export const fmt = (n) => Number(n).toLocaleString("en-US");
