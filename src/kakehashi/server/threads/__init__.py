"""threads: the WSGI engine: worker threads sharing one epoll (or the portable poller),
parked connections, bodies and output buffers, the request watch."""
