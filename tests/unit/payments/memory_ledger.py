"""An in-memory ledger with the posting rules of the real one, for pure tests.

The service posts through ``services/payments/repository/ledger.py`` into PostgreSQL,
whose triggers enforce the same rules again; ``tests/integration/payments/
test_ledger_sql_properties.py`` runs the ledger's properties against that path too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from services.payments.domain.accounts import Side, spec_for
from services.payments.domain.ledger import (
    ZERO,
    Entry,
    TransferExists,
    check_balances,
    effect,
)
from shared.errors import Conflict, InvalidInput


@dataclass
class Ledger:
    """The ledger's rules over dictionaries: balances, entries by transfer id, reversals."""

    balances: dict[str, Decimal] = field(default_factory=dict)
    entries: dict[str, tuple[str, Entry]] = field(default_factory=dict)
    reversed_ids: set[str] = field(default_factory=set)

    def post(self, entry: Entry) -> Entry:
        seen = self.entries.get(entry.transfer_id)
        if seen is not None:
            if seen[0] != entry.request_hash():
                raise TransferExists(f"transfer {entry.transfer_id} exists with a different body",
                                     field="transfer_id")
            return seen[1]
        if entry.reverses is not None:
            if entry.reverses not in self.entries:
                raise InvalidInput(f"cannot reverse unknown transfer {entry.reverses}",
                                   field="reverses")
            if entry.reverses in self.reversed_ids:
                raise Conflict(f"transfer {entry.reverses} is already reversed",
                               field="reverses")
        check_balances(entry, self.balances)
        for account, delta in effect(entry).items():
            self.balances[account] = self.balances.get(account, ZERO) + delta
        self.entries[entry.transfer_id] = (entry.request_hash(), entry)
        if entry.reverses is not None:
            self.reversed_ids.add(entry.reverses)
        return entry

    def trial_balance(self) -> tuple[Decimal, Decimal]:
        """(total debit-side balances, total credit-side balances): equal when sound."""
        debits = ZERO
        credits = ZERO
        for account, balance in self.balances.items():
            if spec_for(account).normal is Side.DEBIT:
                debits += balance
            else:
                credits += balance
        return debits, credits
