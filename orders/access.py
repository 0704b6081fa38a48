"""Who may see the trading records (orders, fills, positions, risk decisions, PnL, balances): staff only, unless
``settings.TRADING_DATA_PUBLIC`` makes them public on purpose. Market data is public and none of this module's
business. The API (:mod:`orders.api`), the live page's panels and its socket (``live.consumers``) all ask
:func:`may_see_trading`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

STAFF_ONLY = (
    "trading data (orders, positions, PnL) is for staff only: sign in as staff (/admin/login/) and send the "
    "session cookie"
)


def may_see_trading(user: Any) -> bool:
    """Whether ``user`` (a Django user, AnonymousUser or None) may see orders, positions and PnL."""
    return settings.TRADING_DATA_PUBLIC or bool(getattr(user, "is_staff", False) and getattr(user, "is_active", False))


class TradingDataAccess(BasePermission):
    """DRF permission: staff sessions, or anyone when ``TRADING_DATA_PUBLIC`` is on."""

    message = STAFF_ONLY

    def has_permission(self, request: Request, view: Any) -> bool:
        return may_see_trading(request.user)
