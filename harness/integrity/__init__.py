"""Integrity under load: nothing acknowledged is lost or duplicated, no customer sees another's data."""
