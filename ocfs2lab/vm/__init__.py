"""vm layer."""
