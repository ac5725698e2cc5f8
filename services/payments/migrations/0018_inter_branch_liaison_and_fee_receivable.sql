-- A client transferred to another branch takes its loans' booked balances along (the
-- ClientTransferred consumer, domain/office_transfers.py): the account moves from the
-- old branch to the new one, and each branch's side of the move goes through the
-- inter-branch liaison account, so each branch's books still balance on their own.
-- For the institution the liaison nets to zero.
INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code, regulator_code)
VALUES ('3460', 'Comptes de liaison entre agences', 'حسابات الربط بين الوكالات',
        'liability', 'detail', '3', '346')
ON CONFLICT (code) DO NOTHING;

INSERT INTO accounting_rules (product_id, kind, gl_code) VALUES
 ('*', 'inter_office', '3460')
ON CONFLICT (product_id, kind) DO NOTHING;

-- Fees under accrual basis: the fees of an installment are earned when it falls due
-- (not day by day): Dr the loan's fees receivable (2171) / Cr fee income (7120); the
-- repayment's fees then settle the receivable, and a loan entering non-accrual or
-- written off has it reversed out of fee income.
INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code, regulator_code)
VALUES ('2171', 'Commissions à recevoir sur microcrédits', 'العمولات المستحقة القبض على القروض الصغرى',
        'asset', 'detail', '2', '2178')
ON CONFLICT (code) DO NOTHING;

INSERT INTO accounting_rules (product_id, kind, gl_code) VALUES
 ('*', 'fee_receivable', '2171')
ON CONFLICT (product_id, kind) DO NOTHING;
