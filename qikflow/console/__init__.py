"""The operator console: a web page to watch the pipeline, find and trace any message, and
re-drive dead letters (`qikflow console`; docs/console.md)."""
