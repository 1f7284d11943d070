"""What a segmentation returns: labels, palette, recoloured image."""
