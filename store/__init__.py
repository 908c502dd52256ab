"""The ClickHouse record of sandboxwatch: events, findings, dead letters and licence versions."""
