"""The Slack adapter: parses payloads, acknowledges fast, renders Block Kit, and makes every Web
API call through one gateway. The domain core never imports from here."""
