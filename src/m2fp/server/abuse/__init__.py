"""Who may ask: the abuse gate of parse requests (API keys, bans, rate limits) and the counter
storage they share (memory or Redis)."""
