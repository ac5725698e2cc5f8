"""The pure model of savings: products, balances and holds, interest, the withdrawal saga."""
