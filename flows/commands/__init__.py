"""One module per `tome` command group; each has ``register(app)`` which flows/cli.py calls."""
