"""Binance's error shape ``{"code": -1121, "msg": "Invalid symbol."}`` and the codes we answer with."""

from __future__ import annotations


class BinanceError(Exception):
    """An error answered to the client as Binance would: an HTTP status and a JSON code/msg."""

    def __init__(self, code: int, msg: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal_chars(name: str, legal: str = "^[0-9]{1,20}$") -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def invalid_param(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


BAD_SYMBOL = (-1121, "Invalid symbol.")
BAD_INTERVAL = (-1120, "Invalid interval.")
BAD_SIGNATURE = (-1022, "Signature for this request is not valid.")
BAD_API_KEY_FMT = (-2014, "API-key format invalid.")
REJECTED_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
OPTIONAL_COMBINATION = (-1128, "Combination of optional parameters invalid.")
START_AFTER_END = (-1023, "Start time is greater than end time.")
INSUFFICIENT_BALANCE = (-2010, "Account has insufficient balance for requested action.")
DUPLICATE_ORDER = (-2010, "Duplicate order sent.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
# Order lists (OCO). Binance answers a query for a list it does not know with "Order list does not exist."
# (observed on the live API); we give it -2013, the query-side code of NO_SUCH_ORDER, as errors.md lists no
# separate code. A cancel of an unknown or finished list is -2011 "Unknown order list sent." (observed).
NO_SUCH_ORDER_LIST = (-2013, "Order list does not exist.")
UNKNOWN_ORDER_LIST = (-2011, "Unknown order list sent.")
BAD_PRICE_RELATIONSHIP = (-2010, "The relationship of the prices for the orders is not correct.")
OCO_TYPE_REJECTED = (-1158, "Order type not supported in OCO.")
# A leg of the wrong kind on the wrong side of an OCO, by (side, position, kind of leg), from errors.md.
OCO_LEG_SIDE: dict[tuple[str, str, str], tuple[int, str]] = {
    ("BUY", "above", "limit"): (-1165, "A limit order in a buy OCO must be below."),
    ("SELL", "below", "limit"): (-1166, "A limit order in a sell OCO must be above."),
    ("BUY", "below", "stop_loss"): (-1196, "A stop loss order in a buy OCO must be above."),
    ("SELL", "above", "stop_loss"): (-1197, "A stop loss order in a sell OCO must be below."),
    ("BUY", "above", "take_profit"): (-1198, "A take profit order in a buy OCO must be below."),
    ("SELL", "below", "take_profit"): (-1199, "A take profit order in a sell OCO must be above."),
}
