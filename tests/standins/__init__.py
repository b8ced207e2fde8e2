"""Local stand-ins for the chat platforms' HTTP APIs, for tests and the load bench."""
