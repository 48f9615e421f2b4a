"""``make demo``: the historical sync against the SP-API sandbox, checked against its truth."""
