"""Connectors that turn exchange APIs (ccxt) and chains (web3) into canonical events on Kafka."""
