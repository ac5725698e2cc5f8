"""The payments domain: chart of accounts, posting rules, payouts, webhook signatures."""
