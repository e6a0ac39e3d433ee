"""A small example shop that reacts to Redo returns."""
