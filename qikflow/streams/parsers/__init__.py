"""Source-format parsers: one pure module per format."""
