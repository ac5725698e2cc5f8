-- The outbox wake-up is only sent when the inserting transaction has not said
-- that its own process publishes the rows it inserts (shared/uow.py sets
-- noria.outbox_notify to 'off', for the transaction, in the INSERT itself).
-- Every NOTIFY-ing commit takes a cluster-wide lock; rows published in process
-- need no wake-up. A missing setting (any other writer) still notifies.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('noria.outbox_notify', true), '') <> 'off' THEN
        PERFORM pg_notify(current_schema() || '_outbox', '');
    END IF;
    RETURN NULL;
END $$;
