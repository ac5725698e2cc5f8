"""The saga monitor knows every state a disbursement saga can be in: a state it does not
list is a saga no operator sees among those needing attention."""

from __future__ import annotations

from console import messages_en, messages_fr
from console.views import ops
from services.loans.domain.saga import SagaStatus


def test_every_saga_state_of_loans_is_listed_and_labelled() -> None:
    assert set(ops.SAGA_STATES) == {s.value for s in SagaStatus}
    for messages in (messages_fr, messages_en):
        catalogue = str(vars(messages))
        for state in ops.SAGA_STATES:
            assert f"sagas.state.{state}" in catalogue, (messages.__name__, state)


def test_the_states_a_saga_waits_in_before_its_pivot_need_attention() -> None:
    waiting = {SagaStatus.RESERVING_CREDIT, SagaStatus.VALIDATING_PAYEES,
               SagaStatus.HOLDING_SAVINGS, SagaStatus.DISBURSING, SagaStatus.COMPENSATING}
    assert {s.value for s in waiting} <= set(ops.IN_FLIGHT)
    assert set(ops.IN_FLIGHT) <= set(ops.NEEDING_ATTENTION)
