-- Compulsory savings a loan product requires before disbursement: a share of the
-- principal or a flat amount, held by savings (its linked compulsory product) before the
-- disbursement saga's pivot. One setting per product, read when a loan is approved.
CREATE TABLE IF NOT EXISTS product_compulsory_savings (
    product_id          text          PRIMARY KEY,
    share_of_principal  numeric(9,6)  CHECK (share_of_principal > 0 AND share_of_principal <= 1),
    amount              numeric(14,2) CHECK (amount > 0),
    savings_product_id  text,
    updated_by          text          NOT NULL,
    updated_at          timestamptz   NOT NULL DEFAULT now(),
    CHECK ((share_of_principal IS NULL) <> (amount IS NULL))
);
