"""The order parameters of the signed endpoints (a single order, and an OCO's two legs), read and checked in
Binance's order with its codes: mandatory parameters per order type, precision, client ids, response types."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import TYPE_CHECKING

from . import wire
from .errors import OCO_TYPE_REJECTED, BinanceError, mandatory
from .params import Params
from .records import OCO_TYPES, ORDER_TYPES, STOP_TYPES, OcoLeg

if TYPE_CHECKING:
    from .venue import BinanceVenue

_CLIENT_ID = re.compile(r"[a-zA-Z0-9-_]{1,36}")
_TIFS = ("GTC", "IOC", "FOK")
_BAD_TIF = (-1115, "Invalid timeInForce.")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
_BAD_RESP_TYPE = (
    -1100,
    "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.",
)


def order_args(venue: BinanceVenue, p: Params) -> dict[str, object]:
    """A single order's parameters as keyword arguments of ``OrderBook.place``, plus ``resp_type``.

    A MARKET order by ``quoteOrderQty`` gets its quantity from the last price, rounded down to the step."""
    spec = p.symbol(venue.specs)
    side = p.enum("side", ("BUY", "SELL"), (-1117, "Invalid side."))
    type_ = p.enum("type", ORDER_TYPES, (-1116, "Invalid orderType."))
    tif = p.enum("timeInForce", _TIFS, _BAD_TIF, required=False)
    qty = p.decimal("quantity")
    quote_qty = p.decimal("quoteOrderQty")
    price = p.decimal("price")
    stop = p.decimal("stopPrice")
    market_price = wire.dec(venue.market.tapes[spec.symbol].last_price(), spec.price_dp)
    if type_ in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and tif is None:
        raise mandatory("timeInForce")
    if type_ in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and price is None:
        raise mandatory("price")
    if type_ in STOP_TYPES and stop is None:
        raise mandatory("stopPrice")
    if type_ == "MARKET" and qty is None and quote_qty is not None:
        if quote_qty <= 0:
            raise BinanceError(-1013, "Filter failure: NOTIONAL")
        qty = (quote_qty / market_price).quantize(spec.step_size, rounding="ROUND_DOWN")
    if qty is None and type_ == "MARKET":
        raise BinanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
    if qty is None:
        raise mandatory("quantity")
    check_precision(quantity=qty, price=price, stopPrice=stop)
    client_id = client_id_param(p, "newClientOrderId")
    resp_type = resp_type_param(p)
    return {
        "spec": spec,
        "side": side,
        "type_": type_,
        "tif": tif,
        "qty": qty,
        "price": None if type_ in ("MARKET", "STOP_LOSS", "TAKE_PROFIT") else price,
        "stop_price": stop,
        "client_id": client_id,
        "market_price": market_price,
        "resp_type": resp_type or ("FULL" if type_ in ("MARKET", "LIMIT") else "ACK"),
    }


def resp_type_param(p: Params) -> str | None:
    """``newOrderRespType`` (ACK, RESULT or FULL), or None when absent."""
    return p.enum("newOrderRespType", _RESP_TYPES, _BAD_RESP_TYPE, required=False)


def client_id_param(p: Params, name: str) -> str | None:
    """A client id parameter, or None when absent; -1100 outside Binance's legal range."""
    client_id = p.raw(name)
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise BinanceError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[a-zA-Z0-9-_]{{1,36}}$'."
        )
    return client_id


def check_precision(**values: Decimal | None) -> None:
    """-1111 for a decimal parameter with more than 8 decimal places."""
    for name, value in values.items():
        if value is not None and value.as_tuple().exponent < -8:  # type: ignore[operator]
            raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")


def oco_type(p: Params, name: str) -> str:
    """``aboveType``/``belowType``: -1116 for what is no order type, -1158 for a type an OCO cannot hold."""
    raw = p.raw(name)
    if raw is None:
        raise mandatory(name)
    if raw not in ORDER_TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    if raw not in OCO_TYPES:
        raise BinanceError(*OCO_TYPE_REJECTED)
    return raw


def oco_leg(p: Params, prefix: str, type_: str) -> OcoLeg:
    """One leg's ``{prefix}Price``, ``{prefix}StopPrice``, ``{prefix}TimeInForce``, ``{prefix}ClientOrderId``,
    each mandatory as for a single order of that type (-1102 naming the prefixed parameter)."""
    limit_type = type_ in ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
    tif = p.enum(f"{prefix}TimeInForce", _TIFS, _BAD_TIF, required=False)
    price = p.decimal(f"{prefix}Price")
    stop = p.decimal(f"{prefix}StopPrice")
    if limit_type and tif is None:
        raise mandatory(f"{prefix}TimeInForce")
    if (limit_type or type_ == "LIMIT_MAKER") and price is None:
        raise mandatory(f"{prefix}Price")
    if type_ in STOP_TYPES and stop is None:
        raise mandatory(f"{prefix}StopPrice")
    check_precision(**{f"{prefix}Price": price, f"{prefix}StopPrice": stop})
    client_id = client_id_param(p, f"{prefix}ClientOrderId") or "sim" + secrets.token_hex(11)
    return OcoLeg(
        type_,
        price if limit_type or type_ == "LIMIT_MAKER" else None,
        stop if type_ in STOP_TYPES else None,
        tif if limit_type else None,
        client_id,
    )
