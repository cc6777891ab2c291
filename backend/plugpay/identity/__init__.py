"""Identity: charger credentials, guest tokens, OIDC login, operator roles."""
