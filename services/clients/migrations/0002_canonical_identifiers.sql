-- Identifiers are canonical (shared/identifiers.py): a CIN or phone is stored with
-- ASCII digits only. Before this migration the onboarding rules accepted any
-- Unicode decimal digit in the digit positions (Python's \d and str.isdigit), so
-- BE١٢٣٤٥٦ and BE123456 could be two clients. Letters were already ASCII A-Z and
-- the phone's "+212[67]" prefix ASCII, so mapping every Unicode decimal digit to
-- its ASCII value is the whole canonicalisation of what could have been stored.
--
-- Unicode assigns decimal digits in runs of ten (zero to nine) by policy; the
-- runs' zeros below are every run outside ASCII (650 digits, Unicode 14), checked
-- by tests/unit/clients/test_identifier_migration.py.
--
-- When two rows turn out to be one identity, the row that already held the
-- canonical value (else the oldest) keeps it; the others keep their stored value,
-- are marked with identity_duplicate_of (the surviving client) for an operator,
-- and are the only rows the new check lets keep a non-canonical identifier.

ALTER TABLE clients ADD COLUMN identity_duplicate_of text REFERENCES clients (id);

-- Each canonical value goes to exactly one row (its holder): no unique index can trip.
WITH zeros(z) AS (VALUES
    (x'00660'::int), (x'006F0'::int), (x'007C0'::int), (x'00966'::int), (x'009E6'::int),
    (x'00A66'::int), (x'00AE6'::int), (x'00B66'::int), (x'00BE6'::int), (x'00C66'::int),
    (x'00CE6'::int), (x'00D66'::int), (x'00DE6'::int), (x'00E50'::int), (x'00ED0'::int),
    (x'00F20'::int), (x'01040'::int), (x'01090'::int), (x'017E0'::int), (x'01810'::int),
    (x'01946'::int), (x'019D0'::int), (x'01A80'::int), (x'01A90'::int), (x'01B50'::int),
    (x'01BB0'::int), (x'01C40'::int), (x'01C50'::int), (x'0A620'::int), (x'0A8D0'::int),
    (x'0A900'::int), (x'0A9D0'::int), (x'0A9F0'::int), (x'0AA50'::int), (x'0ABF0'::int),
    (x'0FF10'::int), (x'104A0'::int), (x'10D30'::int), (x'11066'::int), (x'110F0'::int),
    (x'11136'::int), (x'111D0'::int), (x'112F0'::int), (x'11450'::int), (x'114D0'::int),
    (x'11650'::int), (x'116C0'::int), (x'11730'::int), (x'118E0'::int), (x'11950'::int),
    (x'11C50'::int), (x'11D50'::int), (x'11DA0'::int), (x'16A60'::int), (x'16AC0'::int),
    (x'16B50'::int), (x'1D7CE'::int), (x'1D7D8'::int), (x'1D7E2'::int), (x'1D7EC'::int),
    (x'1D7F6'::int), (x'1E140'::int), (x'1E2F0'::int), (x'1E950'::int), (x'1FBF0'::int)
),
digits AS (
    SELECT string_agg(chr(z + d), '' ORDER BY z, d) AS src,
           string_agg(d::text, '' ORDER BY z, d) AS dst
    FROM zeros CROSS JOIN generate_series(0, 9) AS d
),
canon AS (
    SELECT c.id, c.created_at, c.national_id, c.phone,
           translate(c.national_id, digits.src, digits.dst) AS cin,
           translate(c.phone, digits.src, digits.dst) AS msisdn
    FROM clients c CROSS JOIN digits
),
k AS (
    SELECT canon.*,
           first_value(id) OVER (PARTITION BY cin
                                 ORDER BY national_id = cin DESC, created_at, id) AS cin_holder,
           first_value(id) OVER (PARTITION BY msisdn
                                 ORDER BY phone = msisdn DESC, created_at, id) AS phone_holder
    FROM canon
)
UPDATE clients c
SET national_id = CASE WHEN k.cin_holder = c.id THEN k.cin ELSE c.national_id END,
    phone = CASE WHEN k.phone_holder = c.id THEN k.msisdn ELSE c.phone END,
    identity_duplicate_of = CASE WHEN k.cin_holder <> c.id THEN k.cin_holder
                                 WHEN k.phone_holder <> c.id THEN k.phone_holder END,
    updated_at = now(),
    version = c.version + 1
FROM k
WHERE k.id = c.id AND (k.cin <> k.national_id OR k.msisdn <> k.phone);

ALTER TABLE clients ADD CONSTRAINT clients_identifiers_canonical CHECK (
    identity_duplicate_of IS NOT NULL
    OR (national_id ~ '^[A-Z]{1,2}[0-9]{1,6}$' AND phone ~ '^\+[1-9][0-9]{7,14}$'));
