"""codecurate's pipeline core: recipes, the stage runner, storage and the CLI."""
