"""The demo history's webhooks: the real fan-out and dispatcher, with the receivers' answers made up.

Nothing is sent. Each call's events are fanned out to the demo subscriptions as the call
commits, as always; the dispatcher's own claim (claim_due) takes what is
due at each moment, and core.webhooks.delivery.record() writes each attempt's outcome, which
moves deliveries on (retry with backoff, success, dead letter) and subscriptions (last
success, failing since) exactly as real answers would. The answers come from a seeded random
source: most receivers answer 2xx, some attempts fail and succeed on a retry, a few
deliveries fail for good; and the ledger is down for an afternoon three weeks ago.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max

from core.ops.demo import hub_time
from core.webhooks.delivery import Outcome, load_claimed, record
from core.webhooks.dispatcher import claim_due
from core.webhooks.models import Delivery, Subscription
from core.webhooks.transport import Result

# key, event type (pattern), URL, description. Hosts under .invalid never resolve (RFC 6761):
# should someone resume a demo subscription, its deliveries fail at the DNS lookup, not on a
# stranger's server.
SUBSCRIPTIONS = [
    ("webshop", "salesorder.*", "https://shop.demo.invalid/hooks/ax-orders",
     "Webshop: order status back to the shop"),
    ("invoices", "invoice.*", "https://ledger.demo.invalid/ax/invoices", "Accounting: invoices to the ledger"),
    ("payments", "payment.*", "https://ledger.demo.invalid/ax/payments", "Accounting: payments to the ledger"),
    ("warehouse", "inventory.*", "https://wms.demo.invalid/ax/stock", "Warehouse: low stock to purchasing"),
]
LEDGER = ("invoices", "payments")
PAUSED_NOTE = " (demo: paused; point it at your receiver and resume it)"

OK_BODIES = ['{"received":true}', '{"status":"accepted"}', ""]
FAILURES = [
    Result(503, 0, "http_5xx", "HTTP 503", "Service Unavailable"),
    Result(502, 0, "http_5xx", "HTTP 502", "<html><body><h1>502 Bad Gateway</h1></body></html>"),
    Result(None, 10_000, "timeout", "no response within 10000 ms"),
    Result(None, 0, "connection", "could not connect: [Errno 111] Connection refused"),
    Result(500, 0, "http_5xx", "HTTP 500", '{"error":"internal error"}'),
]
DISPATCH_LATENCY = timedelta(milliseconds=35)


@dataclass(frozen=True)
class Outage:
    """When the ledger answered 503 to everything."""

    start: datetime
    end: datetime

    def covers(self, key: str, at: datetime) -> bool:
        return key in LEDGER and self.start <= at < self.end


class Receivers:
    """The demo subscriptions and how their receivers answer; drives fan-out and dispatch."""

    def __init__(self, rng: random.Random, subscriptions: dict[str, str], outage: Outage) -> None:
        self.rng = rng
        self.keys = {sub_id: key for key, sub_id in subscriptions.items()}
        self.outage = outage
        self.last_delivery = self._newest()
        self.plans: dict[int, list[Result]] = {}
        # When the next delivery falls due (None: none is pending), so that the many calls
        # between two deliveries cost no query.
        self.next_due: datetime | None = None

    @staticmethod
    def _newest() -> int:
        return Delivery.objects.aggregate(newest=Max("pk"))["newest"] or 0

    def expect(self, at: datetime) -> None:
        """Deliveries may fall due from `at` on (a manual retry was asked for)."""
        self.next_due = at if self.next_due is None else min(self.next_due, at)

    def after_call(self, at: datetime) -> None:
        """A call's events are fanned out to the subscriptions as it commits; its deliveries
        are due at once."""
        newest = self._newest()
        if newest > self.last_delivery:
            self.last_delivery = newest
            self.expect(at)

    def dispatch(self, until: datetime) -> None:
        """Send every delivery that falls due before `until`, retries included, as the
        dispatcher would have, each at its moment."""
        while self.next_due is not None and self.next_due < until:
            due = self.next_due = (Delivery.objects.filter(status=Delivery.Status.PENDING,
                                                           subscription__status=Subscription.Status.ACTIVE)
                                   .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
            if due is None or due >= until:
                return
            at = due + DISPATCH_LATENCY
            with hub_time(at):
                claimed = claim_due(sending=True)
            outcomes = [Outcome(d, chunk.token, at, self._answer(d, at))
                        for chunk in claimed for d in load_claimed(chunk.token)]
            if outcomes:
                slowest = max(o.result.duration_ms for o in outcomes)
                with hub_time(at + timedelta(milliseconds=slowest)):
                    record(outcomes)

    def _answer(self, delivery: Delivery, at: datetime) -> Result:
        key = self.keys.get(delivery.subscription.subscription_id, "")
        if self.outage.covers(key, at):
            return self._timed(FAILURES[0])
        plan = self.plans.get(delivery.pk)
        if plan is None:
            plan = self.plans[delivery.pk] = self._plan(delivery)
        return self._timed(plan.pop(0)) if plan else self._ok()

    def _plan(self, delivery: Delivery) -> list[Result]:
        """The failed attempts before the first success (none for most; four, all the policy
        allows, for the few that end in the dead-letter queue)."""
        roll = self.rng.random()
        tries = delivery.subscription.max_retries + 1
        if roll < 0.012:
            return [self.rng.choice(FAILURES) for _ in range(tries)]
        if roll < 0.05:
            return [self.rng.choice(FAILURES) for _ in range(self.rng.choice((1, 1, 2)))]
        return []

    def _ok(self) -> Result:
        return Result(self.rng.choice((200, 200, 200, 202, 204)), self.rng.randint(25, 380),
                      excerpt=self.rng.choice(OK_BODIES))

    def _timed(self, failure: Result) -> Result:
        duration = failure.duration_ms or self.rng.randint(2, 900)
        return Result(failure.status, duration, failure.error_class, failure.error, failure.excerpt)
