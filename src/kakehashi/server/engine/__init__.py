"""engine: what an engine is (the contract the process manager runs) and what every engine
shares: the common context, the send pace."""
