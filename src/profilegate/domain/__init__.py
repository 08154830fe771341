"""Pure domain: models and rules. No IO, no clock, no framework imports."""
