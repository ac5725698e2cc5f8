"""The withdrawal saga, as a pure decision: ``decide(status, reply) -> Decision``.

A withdrawal places a hold and sends one ``PayOutWithdrawal``; payments' replies then
settle the hold (paid), release it (failed) or leave it in place (in doubt: doubt is a
state, never a failure). A reply that repeats what is known changes nothing; a reply
that contradicts a final state (paid after release, failed after paid) is an anomaly
for an operator, and moves no money.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WithdrawalStatus = Literal["pending", "in_doubt", "paid", "released", "review"]
Reply = Literal["paid", "failed", "in_doubt"]
Action = Literal["settle", "release", "mark_in_doubt", "none", "anomaly"]

OPEN: frozenset[str] = frozenset({"pending", "in_doubt"})


@dataclass(frozen=True)
class Decision:
    status: WithdrawalStatus
    action: Action


def decide(status: WithdrawalStatus, reply: Reply) -> Decision:
    if status in OPEN:
        if reply == "paid":
            return Decision("paid", "settle")
        if reply == "failed":
            return Decision("released", "release")
        return Decision("in_doubt", "none" if status == "in_doubt" else "mark_in_doubt")
    if status == "paid":
        return Decision("review", "anomaly") if reply == "failed" else Decision("paid", "none")
    if status == "released":
        return Decision("review", "anomaly") if reply == "paid" else Decision(
            "released", "none")
    return Decision(status, "none")
