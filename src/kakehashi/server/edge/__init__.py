"""edge: between the client and the app: TLS contexts, trusted proxies, the PROXY protocol."""
