"""The browser pages the server hands out: the web phone (`/phone`). Built assets only, no logic."""
