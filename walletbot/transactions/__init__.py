"""Transaction lookups for the user: status wording and the lookup service."""
