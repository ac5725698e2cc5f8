-- SMS about savings (savings.events): version 1 of each template in French and
-- Arabic, and the projection of savings accounts the dormancy notice reads its
-- balance from (AccountDormant does not carry one).
-- urgent = sent even in quiet hours (answers to something the client just did).

INSERT INTO templates (name, language, version, body, variables, urgent) VALUES
('deposit_received', 'fr', 1,
 'Noria: nous avons reçu votre dépôt de {amount} sur votre compte d''épargne. Nouveau solde: {balance}.',
 '{"amount": "money", "balance": "money"}', true),
('deposit_received', 'ar', 1,
 'نوريا: توصلنا بإيداعكم بمبلغ {amount} في حساب التوفير. الرصيد الجديد: {balance}.',
 '{"amount": "money", "balance": "money"}', true),

('withdrawal_paid', 'fr', 1,
 'Noria: votre retrait de {amount} a été versé sur votre portefeuille mobile. Frais: {fee}. Solde de votre épargne: {balance}.',
 '{"amount": "money", "fee": "money", "balance": "money"}', true),
('withdrawal_paid', 'ar', 1,
 'نوريا: تم تحويل سحبكم بمبلغ {amount} إلى محفظتكم. الرسوم: {fee}. رصيد التوفير: {balance}.',
 '{"amount": "money", "fee": "money", "balance": "money"}', true),

('interest_posted', 'fr', 1,
 'Noria: {amount} d''intérêts (nets d''impôt) versés sur votre épargne au {period_end}. Nouveau solde: {balance}.',
 '{"amount": "money", "period_end": "date", "balance": "money"}', false),
('interest_posted', 'ar', 1,
 'نوريا: تمت إضافة فوائد صافية بمبلغ {amount} إلى حساب التوفير بتاريخ {period_end}. الرصيد الجديد: {balance}.',
 '{"amount": "money", "period_end": "date", "balance": "money"}', false),

('account_dormant', 'fr', 1,
 'Noria: votre compte d''épargne est en sommeil faute d''opération. Solde: {balance}. Un dépôt le réactive.',
 '{"balance": "money"}', false),
('account_dormant', 'ar', 1,
 'نوريا: أصبح حساب التوفير الخاص بكم خاملا لعدم وجود عمليات. الرصيد: {balance}. أي إيداع يعيد تنشيطه.',
 '{"balance": "money"}', false),

-- For an account whose balance the projection never learnt (opened before this
-- service read savings.events): the same notice without a figure.
('account_dormant_no_balance', 'fr', 1,
 'Noria: votre compte d''épargne est en sommeil faute d''opération. Un dépôt le réactive.',
 '{}', false),
('account_dormant_no_balance', 'ar', 1,
 'نوريا: أصبح حساب التوفير الخاص بكم خاملا لعدم وجود عمليات. أي إيداع يعيد تنشيطه.',
 '{}', false);

-- Each savings account's client and last known ledger balance, from the events that
-- carry it (SavingsAccountOpened: 0; DepositPosted, WithdrawalCompleted,
-- InterestPosted). balance_at is the occurred_at of the event that set it: a replayed
-- older event never moves the balance back.
CREATE TABLE savings_accounts (
    account_id     text PRIMARY KEY,
    client_id      text          NOT NULL,
    ledger_balance numeric(18,2) NOT NULL,
    balance_at     timestamptz   NOT NULL,
    updated_at     timestamptz   NOT NULL DEFAULT now()
);
