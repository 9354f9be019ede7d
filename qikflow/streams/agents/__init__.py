"""Stream agents discovered automatically: one module per agent."""
