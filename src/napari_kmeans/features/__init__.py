"""Pixels to feature rows: channel layout, masks, colour spaces, the recipe."""
