-- The rescheduling queue read oldest first by status (GET /v1/reschedule-requests), keyset
-- on (created_at, id); loan_requests already has (status, proposed_at).
CREATE INDEX IF NOT EXISTS reschedule_requests_status
    ON reschedule_requests (status, created_at, id);
