"""net: listening sockets and socket I/O helpers: bind, reuse, the SYN filter, systemd
activation and notify."""
