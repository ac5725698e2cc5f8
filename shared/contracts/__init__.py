"""Message contracts of the platform, one module per publishing service.

Importing this package registers every contract with the envelope registry, so
any consumer can validate any message it reads.
"""

from shared.contracts import clients, loans, notifications, payments, savings

__all__ = ["clients", "loans", "notifications", "payments", "savings"]
