-- Version 1 of every template, in French and Arabic. Operators add versions
-- through the API (POST /v1/templates/{name}/versions); the highest one is used.
-- urgent = sent even in quiet hours (answers to something the client just did).

INSERT INTO templates (name, language, version, body, variables, urgent) VALUES
('loan_disbursed', 'fr', 1,
 'Noria: votre prêt de {amount} a été versé sur votre portefeuille ****{wallet}. 1re échéance: {first_due_amount} le {first_due_date}.',
 '{"amount": "money", "wallet": "phone_tail", "first_due_amount": "money", "first_due_date": "date"}', true),
('loan_disbursed', 'ar', 1,
 'نوريا: تم تحويل قرضكم بمبلغ {amount} إلى محفظتكم ****{wallet}. القسط الأول: {first_due_amount} بتاريخ {first_due_date}.',
 '{"amount": "money", "wallet": "phone_tail", "first_due_amount": "money", "first_due_date": "date"}', true),

('repayment_received', 'fr', 1,
 'Noria: nous avons reçu {amount}. Reste à payer: {remaining}. Prochaine échéance: {next_due_amount} le {next_due_date}.',
 '{"amount": "money", "remaining": "money", "next_due_amount": "money", "next_due_date": "date"}', true),
('repayment_received', 'ar', 1,
 'نوريا: توصلنا بمبلغ {amount}. المبلغ المتبقي: {remaining}. القسط المقبل: {next_due_amount} بتاريخ {next_due_date}.',
 '{"amount": "money", "remaining": "money", "next_due_amount": "money", "next_due_date": "date"}', true),

('repayment_due', 'fr', 1,
 'Noria: rappel, votre échéance de {amount} est due le {due_date}. Merci de payer depuis votre portefeuille mobile.',
 '{"amount": "money", "due_date": "date"}', false),
('repayment_due', 'ar', 1,
 'نوريا: تذكير، قسطكم بمبلغ {amount} مستحق بتاريخ {due_date}. المرجو الأداء عبر محفظتكم.',
 '{"amount": "money", "due_date": "date"}', false),

('arrears_notice', 'fr', 1,
 'Noria: votre prêt a {days} jour(s) de retard. Montant impayé: {amount}. Merci de régulariser au plus vite ou de contacter votre agence.',
 '{"amount": "money", "days": "int"}', false),
('arrears_notice', 'ar', 1,
 'نوريا: قرضكم متأخر بـ {days} يوم. المبلغ غير المؤدى: {amount}. المرجو التسوية في أقرب وقت أو الاتصال بوكالتكم.',
 '{"amount": "money", "days": "int"}', false),

('disbursement_failed', 'fr', 1,
 'Noria: le versement de votre prêt de {amount} n''a pas pu être effectué. Vous ne devez rien. Votre agence vous contactera.',
 '{"amount": "money"}', true),
('disbursement_failed', 'ar', 1,
 'نوريا: تعذر تحويل قرضكم بمبلغ {amount}. لا يترتب عليكم أي مبلغ. ستتصل بكم وكالتكم.',
 '{"amount": "money"}', true),

('kyc_verified', 'fr', 1,
 'Noria: votre identité a été vérifiée. Vous pouvez maintenant demander un prêt.',
 '{}', false),
('kyc_verified', 'ar', 1,
 'نوريا: تم التحقق من هويتكم. يمكنكم الآن طلب قرض.',
 '{}', false),

('kyc_rejected', 'fr', 1,
 'Noria: nous n''avons pas pu vérifier votre identité. Merci de vous présenter à votre agence avec votre CIN.',
 '{}', false),
('kyc_rejected', 'ar', 1,
 'نوريا: تعذر التحقق من هويتكم. المرجو الحضور إلى وكالتكم مع البطاقة الوطنية.',
 '{}', false),

('loan_closed', 'fr', 1,
 'Noria: félicitations, votre prêt de {amount} est entièrement remboursé et clôturé. Merci de votre confiance.',
 '{"amount": "money"}', false),
('loan_closed', 'ar', 1,
 'نوريا: مبروك، تم تسديد قرضكم بمبلغ {amount} بالكامل وإغلاقه. شكرا لثقتكم.',
 '{"amount": "money"}', false),

('refund_issued', 'fr', 1,
 'Noria: un remboursement de {amount} a été envoyé sur votre portefeuille mobile.',
 '{"amount": "money"}', true),
('refund_issued', 'ar', 1,
 'نوريا: تم إرجاع مبلغ {amount} إلى محفظتكم.',
 '{"amount": "money"}', true);
