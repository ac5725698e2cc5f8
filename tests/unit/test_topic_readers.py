"""Which consumer group reads which topic, from the services' own consumer specs.

Kafka cannot filter a topic for a reader: a consumer group fetches, and is woken by,
every record of every topic it reads. So the frequent events every service would drop
(issue 18: ``RepaymentPosted``, one per repayment, and the SMS delivery events, two or
three per SMS) must not sit on a topic a service reads, and an event a service handles
must be on a topic that service reads, or the saga waits for it forever.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.clients.bootstrap import build_spec as clients_spec
from services.loans.bootstrap import build_spec as loans_spec
from services.notifications.bootstrap import build_spec as notifications_spec
from services.payments.bootstrap import build_spec as payments_spec
from services.savings.bootstrap import build_spec as savings_spec
from shared.app import ConsumerSpec
from shared.contracts import notifications, payments
from shared.envelope import REGISTRY

SERVICES = ("CLIENTS", "LOANS", "PAYMENTS", "NOTIFICATIONS", "SAVINGS")


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ConsumerSpec]]:
    for service in SERVICES:
        monkeypatch.setenv(f"NORIA_{service}_DATABASE_URL", "postgresql://noria@localhost/noria")
    specs = [build() for build in (clients_spec, loans_spec, payments_spec,
                                   notifications_spec, savings_spec)]
    yield [group for spec in specs for group in spec.consumers]


def test_events_no_service_handles_reach_no_service(groups: list[ConsumerSpec]) -> None:
    for contract in (payments.RepaymentPosted, notifications.SmsSubmitted,
                     notifications.SmsDelivered, notifications.SmsFailed):
        assert not any(contract.type_name() in g.handlers for g in groups), contract
        readers = [g.group for g in groups if contract.topic in g.topics]
        assert readers == [], f"{contract.type_name()} on {contract.topic} wakes {readers}"
    assert payments.RepaymentPosted.topic == payments.POSTINGS
    assert notifications.SmsSubmitted.topic == notifications.DELIVERIES


def test_every_handled_event_is_on_a_topic_its_group_reads(groups: list[ConsumerSpec]) -> None:
    for g in groups:
        for type_name in g.handlers:
            contract = REGISTRY.get(type_name)
            assert contract is not None, f"{g.group} handles {type_name}, no such contract"
            assert contract.topic in g.topics, (
                f"{g.group} handles {type_name} but does not read {contract.topic}")


def test_opt_outs_still_reach_the_clients_service(groups: list[ConsumerSpec]) -> None:
    clients = next(g for g in groups if g.group == "clients")
    assert notifications.SmsOptedOut.topic in clients.topics
    assert "SmsOptedOut" in clients.handlers
