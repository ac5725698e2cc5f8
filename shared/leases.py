"""The lease claim: the one SQL shape by which replicas share rows of work.

A worker claims due rows by moving their lease column forward in the same statement
that picks them, skipping rows another replica holds locked::

    UPDATE <table> SET <lease> = <now> + make_interval(secs => <lease_s>)[, <also>]
     WHERE id IN (SELECT id FROM <table> WHERE <due>
                   ORDER BY <order_by> LIMIT <limit> FOR UPDATE SKIP LOCKED)
    RETURNING <returning>

The row lock lasts only the claiming statement's transaction; the lease (a timestamp
the ``due`` condition tests) is what keeps other replicas off the row afterwards, and a
worker that dies leaves it to expire. Placeholders (``$1``…) are the caller's, so the
statement keeps the argument order of the repository function that runs it.
"""

from __future__ import annotations


def claim_sql(table: str, *, lease_column: str, due: str, order_by: str, limit: str,
              lease_s: str, now: str = "now()", also: str = "", returning: str = "*"
              ) -> str:
    """The statement that claims at most ``limit`` due rows of ``table`` for ``lease_s``
    seconds (every argument is SQL text: a column, an expression or a placeholder)."""
    sets = f"{lease_column} = {now} + make_interval(secs => {lease_s})"
    if also:
        sets += f", {also}"
    return (f"UPDATE {table} SET {sets} WHERE id IN (SELECT id FROM {table} WHERE {due}"
            f" ORDER BY {order_by} LIMIT {limit} FOR UPDATE SKIP LOCKED)"
            f" RETURNING {returning}")
