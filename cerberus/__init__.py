"""CERBERUS: one student with a shared body and several ranking heads, each distilled from a different teacher."""
