// The page's settings and its one way into the DOM: the config the template writes with json_script, the element
// lookup, and the up and down colours that the chart and the tables share.
export const cfg = JSON.parse(document.getElementById("market-config").textContent);
export const $ = (id) => document.getElementById(id);
export const UP = "#16a34a";
export const DOWN = "#dc2626";
