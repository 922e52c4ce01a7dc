"""process: the process manager: the arbiter, its workers and the reloader.  It runs an
engine it is handed and imports neither engine."""
