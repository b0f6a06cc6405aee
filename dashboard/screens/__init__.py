"""The dashboard's screens: each reads the cache through the health model, never the network."""
