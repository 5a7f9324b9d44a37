"""walletbot: a Rasa customer-service bot for the OK钱包 / OKPay digital wallet."""

__version__ = "0.1.0"
