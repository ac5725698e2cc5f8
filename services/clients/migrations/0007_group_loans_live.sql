-- A group's group loans as loans reports them (loans.events, issue 15): one row per group
-- loan, live from GroupLoanActive until GroupLoanClosed (every member's loan closed or
-- written off) or GroupLoanDisbursementFailed (the saga compensated; no member active).
-- While a group has a live row it cannot be dissolved and no member can be removed.
-- One row per group loan, so a redelivered or replayed fact changes nothing twice, and an
-- end heard before its start (a replayed dead letter) is never made live again.
CREATE TABLE group_loans_live (
    group_loan_id      text        PRIMARY KEY,
    group_id           text        NOT NULL,
    live               boolean     NOT NULL,
    loan_ids           text[]      NOT NULL DEFAULT '{}',
    member_ids         text[]      NOT NULL DEFAULT '{}',
    ended_by           text        CHECK (ended_by IN ('GroupLoanClosed',
                                                       'GroupLoanDisbursementFailed')),
    payouts_to_recover text[]      NOT NULL DEFAULT '{}',
    became_live_at     timestamptz,
    ended_at           timestamptz,
    CHECK (live = (ended_by IS NULL))
);
CREATE INDEX group_loans_live_by_group ON group_loans_live (group_id) WHERE live;

-- What migration 0006 recorded (one live group loan per group) moves here; the column
-- groups.live_group_loan_id is no longer written or read.
INSERT INTO group_loans_live (group_loan_id, group_id, live, became_live_at)
SELECT live_group_loan_id, id, true, now() FROM groups WHERE live_group_loan_id IS NOT NULL
ON CONFLICT (group_loan_id) DO NOTHING;

-- A member removed from an active group: freed (active = false) and no longer listed
-- among the group's members; a dissolution frees every member but keeps them listed.
ALTER TABLE group_members ADD COLUMN left_at timestamptz;
