// Everything the page knows, in one object that the socket handlers fill and every panel reads; exposed as
// window.market for the browser tests and a curious console.
export const market = {
  candles: new Map(),   // open time (ms) -> candle as sent by the server (decimal strings)
  feed: null,           // the Feed record
  gaps: new Map(),      // gap id -> gap
  signals: new Map(),   // candle open time (ms) -> the strategy's BUY/SELL on it
  positions: new Map(), // position id -> position (orders.live shape: decimal strings, epoch ms)
  orders: new Map(),    // order id -> order
  lastPrice: null,
  socketOpen: false,
  downSince: null,      // when the feed was first seen not connected (ms, page clock)
  recovered: null,      // {count, seconds, at}: the last filled gap, for the badge
  messages: 0,
  consolidated: null,   // the last answer of /api/v1/consolidated
};
window.market = market;
