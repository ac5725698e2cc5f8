-- The retention job deletes receipts applied longer ago than its age
-- (ServiceSpec.retention: receipts.applied_at); unapplied ones (NULL) stay.
CREATE INDEX receipts_applied ON receipts (applied_at) WHERE applied_at IS NOT NULL;
