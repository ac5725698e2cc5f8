-- Keyset pages: loans oldest application first (submitted_at is created_at), sagas oldest
-- first and most recently changed first, each with the id as the tie-break.
CREATE INDEX IF NOT EXISTS loans_submitted ON loans (created_at, id);
CREATE INDEX IF NOT EXISTS sagas_created ON sagas (created_at, id);
CREATE INDEX IF NOT EXISTS sagas_updated ON sagas (updated_at, id);
