"""Recipes for reporting redo-hooks' failures and traces to your own stack."""
