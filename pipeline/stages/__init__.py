"""The stage kinds that ship with the pipeline core."""
