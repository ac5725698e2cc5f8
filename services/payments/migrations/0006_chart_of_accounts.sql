-- The chart of accounts as data, the accounting rules that map each ledger account
-- kind to a GL account per product, and two dimensions on every journal line: the GL
-- account it rolls up to and the office (branch) it belongs to.
--
-- The default chart follows the classes of the Moroccan credit institutions' chart
-- (PCEC): 1 treasury and interbank, 2 customer operations, 3 securities and other
-- accounts, 4 fixed assets, 5 provisions and equity, 6 expenses, 7 income. The codes,
-- names and regulator codes below are a reasonable default, kept as rows an
-- institution edits (PUT /v1/gl-accounts/{code}), not as code.

CREATE TABLE gl_accounts (
    code           text PRIMARY KEY CHECK (code ~ '^[0-9A-Za-z._-]{1,20}$'),
    name_fr        text NOT NULL CHECK (length(name_fr) BETWEEN 1 AND 200),
    name_ar        text NOT NULL CHECK (length(name_ar) BETWEEN 1 AND 200),
    type           text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'income',
                                                 'expense')),
    usage          text NOT NULL DEFAULT 'detail' CHECK (usage IN ('header', 'detail')),
    parent_code    text REFERENCES gl_accounts (code),
    regulator_code text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_code IS NULL OR parent_code <> code)
);
CREATE INDEX gl_accounts_parent ON gl_accounts (parent_code);

INSERT INTO gl_accounts (code, name_fr, name_ar, type, usage, parent_code, regulator_code) VALUES
 ('1',    'Trésorerie et opérations interbancaires', 'الخزينة والعمليات بين البنوك', 'asset', 'header', NULL, '1'),
 ('1110', 'Valeurs en caisse (espèces des agences)', 'النقود في الصندوق (نقد الوكالات)', 'asset', 'detail', '1', '111'),
 ('1140', 'Avoirs auprès des émetteurs de monnaie électronique', 'الأرصدة لدى مصدري النقود الإلكترونية', 'asset', 'detail', '1', '114'),
 ('2',    'Opérations avec la clientèle', 'العمليات مع الزبناء', 'asset', 'header', NULL, '2'),
 ('2100', 'Microcrédits à la clientèle (compte de contrôle)', 'القروض الصغرى للزبناء (حساب المراقبة)', 'asset', 'detail', '2', '211'),
 ('2170', 'Intérêts courus à recevoir sur microcrédits', 'الفوائد المستحقة القبض على القروض الصغرى', 'asset', 'detail', '2', '2178'),
 ('2190', 'Provisions pour créances en souffrance', 'مخصصات الديون المتعثرة', 'asset', 'detail', '2', '2199'),
 ('2210', 'Dépôts d''épargne de la clientèle', 'ودائع ادخار الزبناء', 'liability', 'detail', '2', '224'),
 ('2250', 'Sommes dues à la clientèle', 'المبالغ المستحقة للزبناء', 'liability', 'detail', '2', '225'),
 ('3',    'Titres et autres opérations', 'السندات وعمليات أخرى', 'liability', 'header', NULL, '3'),
 ('3470', 'Retenues à la source à reverser', 'الاقتطاعات من المنبع الواجب أداؤها', 'liability', 'detail', '3', '347'),
 ('3480', 'Comptes d''attente — remboursements à imputer', 'حسابات الانتظار — تسديدات في انتظار التخصيص', 'liability', 'detail', '3', '348'),
 ('3499', 'Comptes d''attente — sans règle comptable (à régulariser)', 'حسابات الانتظار — بدون قاعدة محاسبية (للتسوية)', 'liability', 'detail', '3', '349'),
 ('4',    'Immobilisations', 'الأصول الثابتة', 'asset', 'header', NULL, '4'),
 ('4400', 'Immobilisations corporelles', 'الأصول الثابتة المادية', 'asset', 'detail', '4', '44'),
 ('5',    'Provisions et fonds propres', 'المخصصات والأموال الذاتية', 'equity', 'header', NULL, '5'),
 ('5100', 'Fonds de dotation et financements reçus', 'أموال التخصيص والتمويلات المتلقاة', 'equity', 'detail', '5', '51'),
 ('5800', 'Report à nouveau (résultats reportés)', 'الأرباح المرحلة', 'equity', 'detail', '5', '58'),
 ('6',    'Charges', 'التكاليف', 'expense', 'header', NULL, '6'),
 ('6110', 'Intérêts servis sur l''épargne de la clientèle', 'الفوائد المدفوعة على ادخار الزبناء', 'expense', 'detail', '6', '611'),
 ('6700', 'Dotations aux provisions pour créances en souffrance', 'مخصصات الديون المتعثرة', 'expense', 'detail', '6', '67'),
 ('6750', 'Pertes sur créances irrécouvrables', 'خسائر الديون غير القابلة للاسترداد', 'expense', 'detail', '6', '675'),
 ('7',    'Produits', 'الإيرادات', 'income', 'header', NULL, '7'),
 ('7110', 'Intérêts sur microcrédits', 'فوائد القروض الصغرى', 'income', 'detail', '7', '711'),
 ('7120', 'Commissions sur microcrédits', 'عمولات القروض الصغرى', 'income', 'detail', '7', '712'),
 ('7130', 'Pénalités de retard', 'غرامات التأخير', 'income', 'detail', '7', '713'),
 ('7700', 'Récupérations sur créances amorties', 'المبالغ المستردة من الديون المشطوبة', 'income', 'detail', '7', '77');

-- Accounting rules: for a product (the loans or savings product id; '*' is the
-- default every product without its own row uses), which GL account each ledger
-- account kind posts to. The per-loan ledger accounts (portfolio:<loan>,
-- interest_receivable:<loan>, allowance:<loan>) are sub-ledgers of the GL account
-- their kind maps to (the control account).
CREATE TABLE accounting_rules (
    product_id text NOT NULL CHECK (length(product_id) BETWEEN 1 AND 100),
    kind       text NOT NULL,
    gl_code    text NOT NULL REFERENCES gl_accounts (code),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT 'migration',
    PRIMARY KEY (product_id, kind)
);

INSERT INTO accounting_rules (product_id, kind, gl_code) VALUES
 ('*', 'loan_portfolio',           '2100'),
 ('*', 'provider_settlement',      '1140'),
 ('*', 'client_payable',           '2250'),
 ('*', 'repayment_suspense',       '3480'),
 ('*', 'interest_income',          '7110'),
 ('*', 'fee_income',               '7120'),
 ('*', 'penalty_income',           '7130'),
 ('*', 'write_off_expense',        '6750'),
 ('*', 'funding',                  '5100'),
 ('*', 'interest_receivable',      '2170'),
 ('*', 'loan_loss_allowance',      '2190'),
 ('*', 'provision_expense',        '6700'),
 ('*', 'recovery_income',          '7700'),
 ('*', 'retained_earnings',        '5800'),
 ('*', 'savings_deposits',         '2210'),
 ('*', 'branch_cash',              '1110'),
 ('*', 'interest_expense',         '6110'),
 ('*', 'withholding_tax_payable',  '3470');

-- What payments knows about a loan beyond its ledger accounts: its product (for the
-- rules), its office (for the line's branch), whether it has stopped accruing.
CREATE TABLE loan_dimensions (
    loan_id            text PRIMARY KEY,
    product_id         text,
    office_id          text,
    office_path        text,
    non_accrual_since  date,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The institution's accounting settings (one row).
CREATE TABLE accounting_settings (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    accounting_basis   text NOT NULL DEFAULT 'cash' CHECK (accounting_basis IN ('cash', 'accrual')),
    non_accrual_days   integer NOT NULL DEFAULT 90 CHECK (non_accrual_days BETWEEN 1 AND 3650),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL DEFAULT 'migration'
);
INSERT INTO accounting_settings DEFAULT VALUES;

-- The business date is the institution's (Africa/Casablanca), never the session's.
ALTER TABLE journal_entries
    ALTER COLUMN business_date SET DEFAULT (now() AT TIME ZONE 'Africa/Casablanca')::date;
ALTER TABLE journal_entries ADD COLUMN office_id text;
CREATE INDEX journal_entries_business_date ON journal_entries (business_date);

ALTER TABLE journal_lines ADD COLUMN gl_code text REFERENCES gl_accounts (code);
ALTER TABLE journal_lines ADD COLUMN office_id text;
-- New lines always carry their GL account (lines from before this migration are
-- read through the default rules).
ALTER TABLE journal_lines ADD CONSTRAINT journal_lines_gl_code CHECK (gl_code IS NOT NULL) NOT VALID;
CREATE INDEX journal_lines_gl ON journal_lines (gl_code, office_id);

-- Each new line gets its GL account from the rules (the loan's product, else the
-- default), and its office from the entry or the loan, unless the writer gave them.
CREATE FUNCTION ledger_line_dimensions() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e_loan text;
    e_office text;
    d_office text;
    product text;
BEGIN
    IF NEW.gl_code IS NOT NULL AND NEW.office_id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    SELECT je.loan_id, je.office_id INTO e_loan, e_office
      FROM journal_entries je WHERE je.id = NEW.entry_id;
    SELECT d.product_id, d.office_id INTO product, d_office
      FROM loan_dimensions d WHERE d.loan_id = e_loan;
    IF NEW.office_id IS NULL THEN
        NEW.office_id := coalesce(e_office, d_office);
    END IF;
    IF NEW.gl_code IS NULL THEN
        IF NEW.account_id LIKE 'gl:%' THEN
            NEW.gl_code := substr(NEW.account_id, 4);
        ELSE
            SELECT r.gl_code INTO NEW.gl_code
              FROM accounts a JOIN accounting_rules r ON r.kind = a.kind
             WHERE a.id = NEW.account_id AND r.product_id IN ('*', coalesce(product, '*'))
             ORDER BY (r.product_id = '*') LIMIT 1;
        END IF;
        IF NEW.gl_code IS NULL THEN
            -- a kind no rule maps yet: money still moves, and the line waits in a
            -- suspense GL account every trial balance shows until a rule is added
            NEW.gl_code := '3499';
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER journal_lines_dimensions BEFORE INSERT ON journal_lines
    FOR EACH ROW EXECUTE FUNCTION ledger_line_dimensions();
