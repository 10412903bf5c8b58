"""The command line, the top layer: it may import every package (`ui`, `training`, `chatbot`, `knowledge_base`);
nothing imports it. `cli.main` builds the `chatbot` command from each subcommand module's `register`."""
