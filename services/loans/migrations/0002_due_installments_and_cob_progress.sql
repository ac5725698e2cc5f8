-- "Due on a date" reads every installment of one due date, paid or not: the partial
-- index installments_open_due leaves the paid ones out, so it cannot serve it. The
-- trailing (loan_id, number) is the keyset order of the listing.
CREATE INDEX installments_due_date ON installments (due_date, loan_id, number);

-- Close of business as a job: a stable run id per business date (what
-- GET /v1/close-of-business/{run_id} looks up), who asked, the step it is in and when it
-- last made progress, how many times the date was attempted, and why the last attempt
-- failed. status: running | completed | failed. A run is alive while its session holds
-- the close-of-business advisory lock: a 'running' row nobody holds the lock for was
-- left by a process that died, and is marked failed (see services/loans/cob.py).
ALTER TABLE cob_runs
    ADD COLUMN run_id       text        NOT NULL DEFAULT gen_random_uuid()::text,
    ADD COLUMN requested_by text,
    ADD COLUMN step         text,
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN attempts     integer     NOT NULL DEFAULT 1,
    ADD COLUMN error        text;
CREATE UNIQUE INDEX cob_runs_run_id ON cob_runs (run_id);
CREATE INDEX cob_runs_running ON cob_runs (business_date) WHERE status = 'running';
