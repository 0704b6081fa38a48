"""The strategy's decisions, one per strategy and closed candle (ARCHITECTURE §5).

Every evaluated candle is stored, HOLD included, not only BUY and SELL:

- a candle recomputed after a backfill may turn from BUY into HOLD; with every decision stored, the same
  upsert replaces the BUY (storing only signals would need a separate delete path that a crash could skip);
- a HOLD keeps its votes and reasons ("net vote +0.20 is below the 0.30 threshold", "held back by the
  cooldown"), which is how a user checks why a candle did *not* signal;
- the newest row says how far the strategy has evaluated a series (where a restarted stream picks up).

The cost is one small document per candle (550 bytes on average, measured: 0.8 MB a day per 1m series).
Reads of signals filter on ``decision`` (the API answers BUY and SELL unless asked for HOLD).
"""

from __future__ import annotations

from django.db import models
from django_mongodb_backend.fields import ArrayField


class Signal(models.Model):
    """What ``strategy`` (at ``version``) decided on the closed candle ``candle_open_time`` of a series."""

    class Decision(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"
        HOLD = "HOLD"

    strategy = models.CharField(max_length=32)
    version = models.IntegerField()
    exchange = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32)
    interval = models.CharField(max_length=4)
    candle_open_time = models.DateTimeField()
    decision = models.CharField(max_length=4, choices=Decision.choices)
    confidence = models.DecimalField(max_digits=8, decimal_places=4, help_text="|net vote|, 0 to 1")
    net = models.DecimalField(max_digits=8, decimal_places=4, help_text="signed sum of the votes (+ buy, - sell)")
    indicators = models.JSONField(default=dict, help_text="the candle's indicator values (null: not defined yet)")
    votes = models.JSONField(default=list, help_text="each rule's vote: rule, signed weight, reason")
    reasons = ArrayField(models.TextField(), default=list, help_text="why the decision is what it is")
    created_at = models.DateTimeField(help_text="first evaluated")
    updated_at = models.DateTimeField(help_text="last (re)evaluated")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "exchange", "symbol", "interval", "candle_open_time"], name="signal_identity"
            )
        ]
        # The unique index is partial (filtered on BSON type) and unused by ordinary queries (ARCHITECTURE §5):
        # "signal_order" serves the API's and the admin's reads.
        indexes = [models.Index(fields=["exchange", "symbol", "candle_open_time"], name="signal_order")]
        ordering = ["exchange", "symbol", "candle_open_time"]

    def __str__(self) -> str:
        return (
            f"{self.strategy} v{self.version} {self.exchange}:{self.symbol} {self.interval} "
            f"{self.candle_open_time:%Y-%m-%d %H:%M} {self.decision}"
        )
