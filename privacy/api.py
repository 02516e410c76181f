"""REST API for consent, the person's requests and the access log (paths and JSON names are a contract:
see issue 15)."""
