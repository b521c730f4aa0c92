"""Built-in joint features, one module each, named as registered (``JOINTS`` lists them without importing)."""
