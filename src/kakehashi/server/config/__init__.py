"""config: one declaration per setting (ServerConfig), its TOML and environment sources, and
the generator of docs/settings.md."""
