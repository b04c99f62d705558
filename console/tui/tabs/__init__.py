"""One module per run tab, so each can grow with its service."""
