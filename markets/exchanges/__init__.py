"""Exchange adapters: one module per exchange behind the Protocol in base.py. No Django here."""
