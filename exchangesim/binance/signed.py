"""Signed endpoints: order (POST/GET/DELETE), order/test, account, openOrders, allOrders, and OCO order lists
(orderList/oco, orderList GET/DELETE, openOrderList).

The signature is checked over the raw bytes received (query string then body, ``signature``
removed), as Binance does, because clients order and encode their parameters differently.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from . import wire
from .errors import (
    BAD_API_KEY_FMT,
    BAD_SIGNATURE,
    NO_SUCH_ORDER,
    NO_SUCH_ORDER_LIST,
    REJECTED_KEY,
    START_AFTER_END,
    UNKNOWN_ORDER,
    UNKNOWN_ORDER_LIST,
    BinanceError,
    mandatory,
)
from .filters import check_filters
from .order_params import check_precision, client_id_param, oco_leg, oco_type, order_args, resp_type_param
from .params import Params
from .records import Account, Order, OrderList
from .reports import DAY_MS, cancel_result, d8, list_status, order_counts, order_response, order_status
from .rest import json_response, read_params

if TYPE_CHECKING:
    from .venue import BinanceVenue


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` without its ``signature=`` parameter, and that signature."""
    parts = raw.split("&") if raw else []
    sigs = [p.split("=", 1)[1] for p in parts if p.startswith("signature=")]
    return "&".join(p for p in parts if not p.startswith("signature=")), (sigs[0] if sigs else None)


class SignedRest:
    """Handlers of the TRADE/USER_DATA endpoints."""

    def __init__(self, venue: BinanceVenue) -> None:
        self.venue = venue
        self.book = venue.orders

    def routes(self) -> list[web.RouteDef]:
        """The signed endpoints' routes."""
        return [
            web.post("/api/v3/order", self.new_order),
            web.post("/api/v3/order/test", self.test_order),
            web.get("/api/v3/order", self.query_order),
            web.delete("/api/v3/order", self.cancel_order),
            web.get("/api/v3/account", self.account),
            web.get("/api/v3/openOrders", self.open_orders),
            web.get("/api/v3/allOrders", self.all_orders),
            web.post("/api/v3/orderList/oco", self.new_oco),
            web.get("/api/v3/orderList", self.query_list),
            web.delete("/api/v3/orderList", self.cancel_list),
            web.get("/api/v3/openOrderList", self.open_lists),
        ]

    async def authenticate(self, request: web.Request) -> tuple[Account, Params]:
        """API key, mandatory parameters, signature and recvWindow, in Binance's order."""
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key or not re.fullmatch(r"[A-Za-z0-9_\-]{1,128}", key):
            raise BinanceError(*BAD_API_KEY_FMT, status=401)
        account = self.book.accounts.get(key)
        if account is None:
            raise BinanceError(*REJECTED_KEY, status=401)
        params = await read_params(request)
        body = (await request.read()).decode("utf-8", "replace")  # cached by read_params: no double read
        query, q_sig = _strip_signature(request.raw_path.partition("?")[2])  # as sent, not decoded
        body, b_sig = _strip_signature(body)
        signature = q_sig or b_sig
        timestamp = params.time("timestamp", required=True)
        if not signature:
            raise mandatory("signature")
        expected = hmac.new(account.secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
        if not re.fullmatch(r"[0-9a-fA-F]{64}", signature) or not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(*BAD_SIGNATURE)
        recv_window = params.decimal("recvWindow")
        if recv_window is None:
            recv_window = Decimal(5000)
        if recv_window > 60000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        server = self.venue.server_time()
        assert timestamp is not None
        if timestamp >= server + 1000:
            raise BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if server - timestamp > recv_window:
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return account, params

    async def new_order(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order``: place one order, answered in its ``newOrderRespType`` with the order counts."""
        account, p = await self.authenticate(request)
        args = order_args(self.venue, p)
        resp_type = args.pop("resp_type")
        if args["client_id"] is None:
            args["client_id"] = "sim" + secrets.token_hex(11)  # Binance generates one too
        order = self.book.place(account, now=self.venue.server_time(), **args)  # type: ignore[arg-type]
        return json_response(order_response(order, str(resp_type)), headers=order_counts(account, order.time))

    async def test_order(self, request: web.Request) -> web.Response:
        """``POST /api/v3/order/test``: the checks of a new order (parameters, filters), nothing placed."""
        _account, p = await self.authenticate(request)
        args = order_args(self.venue, p)
        check_filters(args["spec"], args["price"], args["qty"], args["market_price"])  # type: ignore[arg-type]
        return json_response({})

    def _find(self, account: Account, p: Params) -> Order:
        spec = p.symbol(self.venue.specs)
        order_id = p.int("orderId")
        client_id = p.raw("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        order = (
            account.orders.get(order_id) if order_id is not None else account.by_client_id(spec.symbol, client_id or "")
        )
        if order is None or order.symbol != spec.symbol:
            raise BinanceError(*NO_SUCH_ORDER)
        return order

    async def query_order(self, request: web.Request) -> web.Response:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        account, p = await self.authenticate(request)
        order = self._find(account, p)
        return json_response(order_status(order))

    async def cancel_order(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/order``: -2011 for an order that is not there; a leg of an OCO cancels its list."""
        account, p = await self.authenticate(request)
        try:
            order = self._find(account, p)
        except BinanceError as err:
            if err.code != NO_SUCH_ORDER[0]:
                raise
            raise BinanceError(*UNKNOWN_ORDER) from err
        spec = self.venue.specs[order.symbol]
        self.book.cancel(account, spec, order, self.venue.server_time())  # a leg of an OCO cancels the list
        return json_response(cancel_result(order))

    async def open_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/openOrders``: the account's working orders, on ``symbol`` or on every symbol."""
        account, p = await self.authenticate(request)
        symbol = p.symbol(self.venue.specs).symbol if p.raw("symbol") else None
        return json_response(
            [
                order_status(o)
                for o in account.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)
            ]
        )

    async def all_orders(self, request: web.Request) -> web.Response:
        """``GET /api/v3/allOrders``: the account's orders on ``symbol`` (OCO legs included), oldest first.

        ``orderId``: orders from that id on; else ``startTime``: the oldest from then (never past ``endTime``);
        else the most recent (up to ``endTime``). At most ``limit`` (default 500, max 1000); the window between
        ``startTime`` and ``endTime`` may not exceed 24 hours, as on Binance."""
        account, p = await self.authenticate(request)
        spec = p.symbol(self.venue.specs)
        from_id = p.int("orderId")
        start, end = p.time("startTime"), p.time("endTime")
        limit = p.int("limit", default=500, lo=1, hi=1000) or 500
        if start is not None and end is not None:
            if start > end:
                raise BinanceError(*START_AFTER_END)
            if end - start > DAY_MS:
                raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
        orders = [
            o
            for o in sorted(account.orders.values(), key=lambda o: o.order_id)
            if o.symbol == spec.symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        chosen = orders[:limit] if from_id is not None or start is not None else orders[-limit:]
        return json_response([order_status(o) for o in chosen])

    # -- OCO order lists ------------------------------------------------------------------------
    async def new_oco(self, request: web.Request) -> web.Response:
        """``POST /api/v3/orderList/oco``: two legs, above and below the last price, sharing one reservation."""
        account, p = await self.authenticate(request)
        spec = p.symbol(self.venue.specs)
        side = p.enum("side", ("BUY", "SELL"), (-1117, "Invalid side."))
        qty = p.decimal("quantity", required=True)
        above_type, below_type = oco_type(p, "aboveType"), oco_type(p, "belowType")
        above, below = oco_leg(p, "above", above_type), oco_leg(p, "below", below_type)
        check_precision(quantity=qty)
        list_client_id = client_id_param(p, "listClientOrderId") or "sim" + secrets.token_hex(11)
        # Binance's docs do not name the default; its example answer has RESULT-shaped order reports.
        resp_type = resp_type_param(p) or "RESULT"
        market_price = wire.dec(self.venue.market.tapes[spec.symbol].last_price(), spec.price_dp)
        assert side is not None
        assert qty is not None
        lst = self.book.place_oco(
            account,
            spec,
            side=side,
            qty=qty,
            above=above,
            below=below,
            list_client_id=list_client_id,
            market_price=market_price,
            now=self.venue.server_time(),
        )
        body = list_status(lst)
        body["orderReports"] = [order_response(leg, resp_type) for leg in lst.legs]
        return json_response(body, headers=order_counts(account, lst.transaction_time))  # legs count 2

    def _find_list(self, account: Account, list_id: int | None, client_id: str | None) -> OrderList | None:
        """By ``orderListId`` (which wins when both are sent, as on Binance), else by listClientOrderId."""
        if list_id is not None:
            return account.lists.get(list_id)
        return account.list_by_client_id(client_id or "")

    async def query_list(self, request: web.Request) -> web.Response:
        """``GET /api/v3/orderList`` by ``orderListId`` or ``origClientOrderId`` (the listClientOrderId)."""
        account, p = await self.authenticate(request)
        list_id, client_id = p.int("orderListId"), p.raw("origClientOrderId")
        if list_id is None and client_id is None:  # Binance's answer to neither, as observed on the live API
            raise BinanceError(
                -1128, "Combination of optional parameters invalid. Recommendation: 'orderListId' should also be sent."
            )
        lst = self._find_list(account, list_id, client_id)
        if lst is None:
            raise BinanceError(*NO_SUCH_ORDER_LIST)
        return json_response(list_status(lst))

    async def cancel_list(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/orderList`` by ``symbol`` and ``orderListId`` or ``listClientOrderId``: both legs
        CANCELED, the reservation released once, the list ALL_DONE."""
        account, p = await self.authenticate(request)
        spec = p.symbol(self.venue.specs)
        list_id, client_id = p.int("orderListId"), p.raw("listClientOrderId")
        if list_id is None and client_id is None:  # worded as DELETE /api/v3/order words its own
            raise BinanceError(
                -1102, "Param 'orderListId' or 'listClientOrderId' must be sent, but both were empty/null!"
            )
        lst = self._find_list(account, list_id, client_id)
        if lst is None or lst.symbol != spec.symbol:
            raise BinanceError(*UNKNOWN_ORDER_LIST)
        self.book.cancel_list(account, lst, self.venue.server_time())
        body = list_status(lst)
        body["orderReports"] = [cancel_result(leg) for leg in lst.legs]
        return json_response(body)

    async def open_lists(self, request: web.Request) -> web.Response:
        """``GET /api/v3/openOrderList``: every executing list of the account (python-binance's
        ``get_open_oco_orders``)."""
        account, _ = await self.authenticate(request)
        return json_response([list_status(lst) for lst in account.lists.values() if lst.status == "EXECUTING"])

    async def account(self, request: web.Request) -> web.Response:
        """``GET /api/v3/account``: the account's balances (free and locked) and commission rates."""
        account, _ = await self.authenticate(request)
        assets = sorted(set(account.free) | set(account.locked))
        return json_response(
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": "0.00100000",
                    "taker": "0.00100000",
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.venue.server_time(),
                "accountType": "SPOT",
                "balances": [
                    {
                        "asset": a,
                        "free": d8(account.free.get(a, Decimal(0))),
                        "locked": d8(account.locked.get(a, Decimal(0))),
                    }
                    for a in assets
                ],
                "permissions": ["SPOT"],
                "uid": zlib.crc32(account.api_key.encode()),
            }
        )
