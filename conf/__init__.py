"""The Hydra config tree (shipped inside the package, so an installed ftaudit composes the same configs)."""
