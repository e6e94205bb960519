"""Authentication: passwords, TOTP, recovery codes, single-use tokens, sessions."""
