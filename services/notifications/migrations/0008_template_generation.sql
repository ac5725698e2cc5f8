-- The templates' generation: a number every change to the templates table moves on, in
-- the changing transaction. The service keeps the templates in memory and reads this one
-- number in the statement that reads the recipient; a different number (a version added
-- by an operator or a migration, by any replica) makes it read the templates again before
-- rendering, so a message never uses a template older than the edits committed before
-- its transaction read. It starts at a random value, so two schemas (tests, several
-- instances in one process) do not share numbers.
CREATE TABLE template_generation (
    one        boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint  NOT NULL
);
INSERT INTO template_generation (generation) VALUES ((random() * 1e15)::bigint);

CREATE FUNCTION templates_changed() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE template_generation SET generation = generation + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER templates_generation AFTER INSERT OR UPDATE OR DELETE ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION templates_changed();
CREATE TRIGGER templates_generation_truncate AFTER TRUNCATE ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION templates_changed();
