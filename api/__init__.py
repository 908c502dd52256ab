"""HTTP API and web console over the store: history, evidence, exports, summaries, pre-checks, audit."""
