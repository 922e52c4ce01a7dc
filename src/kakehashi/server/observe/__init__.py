"""observe: what operators see: loggers, the buffered log file, the access log, metrics,
their exposition and the /metrics listener."""
