"""SMS providers: an SMPP 3.4 client and an HTTP aggregator adapter."""
