"""The mobile-money provider simulator (``python -m simulators.mobile_money``)."""
