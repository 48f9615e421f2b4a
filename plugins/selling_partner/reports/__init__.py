"""Order history through the Reports API: pure parsing (``parsing``) and the window ledger (``ledger``)."""
