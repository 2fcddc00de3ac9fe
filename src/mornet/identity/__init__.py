"""Identity: users, passwords, access tokens, roles and blocking."""
