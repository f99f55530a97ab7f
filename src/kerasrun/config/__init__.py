"""The Hydra side: conf/, resolvers, validation, one-line errors and a fast `--help`."""
