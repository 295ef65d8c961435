"""Who may do what: the users file, sessions and their revocation, login throttles, roles."""
